/* error.c - the error table behind ms_strerror(). */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *msg;
} table[MS_E_MAX] = {
    [MS_OK] = {"MS_OK", "success"},
    [MS_ENOMEM] = {"MS_ENOMEM", "out of memory"},
    [MS_EINVAL] = {"MS_EINVAL", "invalid argument"},
    [MS_EIO] = {"MS_EIO", "I/O error"},
    [MS_ECODEC] = {"MS_ECODEC", "unknown codec id"},
    [MS_EVERSION] = {"MS_EVERSION", "unsupported format version"},
    [MS_ETRUNCATED] = {"MS_ETRUNCATED", "input is truncated"},
    [MS_ETRAILING] = {"MS_ETRAILING", "trailing bytes after message"},
    [MS_EMALFORMED] = {"MS_EMALFORMED", "malformed input"},
    [MS_EBASE64] = {"MS_EBASE64", "invalid base64"},
    [MS_ETOOLARGE] = {"MS_ETOOLARGE", "size exceeds limit"},
    [MS_ECHECKSUM] = {"MS_ECHECKSUM", "checksum mismatch"},
    [MS_ENOTFOUND] = {"MS_ENOTFOUND", "not found"},
    [MS_ECOMPACTED] = {"MS_ECOMPACTED",
                       "mvcc: required revision has been compacted"},
    [MS_EFUTUREREV] = {"MS_EFUTUREREV",
                       "mvcc: required revision is a future revision"},
    [MS_EDUPKEY] = {"MS_EDUPKEY", "duplicate key given in txn request"},
    [MS_EKEYEMPTY] = {"MS_EKEYEMPTY", "key is not provided"},
    [MS_EEXISTS] = {"MS_EEXISTS", "already exists"},
    [MS_ENOLEADER] = {"MS_ENOLEADER", "no leader"},
    [MS_ENOTLEADER] = {"MS_ENOTLEADER", "not leader"},
    [MS_ESHUTDOWN] = {"MS_ESHUTDOWN", "server is shutting down"},
    [MS_ENOSPACE] = {"MS_ENOSPACE", "no space"},
    [MS_ENOTIMPL] = {"MS_ENOTIMPL", "not implemented"},
    [MS_ETIMEOUT] = {"MS_ETIMEOUT", "request timed out"},
    [MS_ECORRUPT] = {"MS_ECORRUPT", "corrupt data"},
    [MS_ETOOMANYOPS] = {"MS_ETOOMANYOPS",
                        "too many operations in txn request"},
    [MS_ELEASE] = {"MS_ELEASE", "requested lease not found"},
    [MS_ERAFT] = {"MS_ERAFT", "raft error"},
    [MS_ECANCELED] = {"MS_ECANCELED", "request canceled"},
    [MS_ETLS] = {"MS_ETLS", "TLS handshake or certificate refused"},
};

const char *ms_strerror(int code)
{
    if (code < 0 || code >= MS_E_MAX || table[code].msg == NULL)
        return "unknown error";
    return table[code].msg;
}

const char *ms_errname(int code)
{
    if (code < 0 || code >= MS_E_MAX || table[code].name == NULL)
        return "MS_E?";
    return table[code].name;
}

int ms_seterr(char *errmsg, size_t size, int code, const char *fmt, ...)
{
    if (errmsg != NULL && size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, size, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ms_prefixerr(char *errmsg, size_t size, const char *fmt, ...)
{
    char prefix[128];
    char old[MS_ERRMSG_SIZE];
    va_list ap;

    if (errmsg == NULL || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    snprintf(old, sizeof(old), "%s", errmsg);
    snprintf(errmsg, size, "%s: %s", prefix, old);
}
