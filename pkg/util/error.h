/* error.h - the one table of metastore error codes and their messages. */
#ifndef MS_UTIL_ERROR_H
#define MS_UTIL_ERROR_H

#include <stddef.h>

/* Every function in libmetastore that can fail returns 0 or one of these.
 * Codes are stable: they appear in logs and tool exit messages. */
enum {
    MS_OK = 0,
    MS_ENOMEM = 1,        /* out of memory */
    MS_EINVAL = 2,        /* invalid argument */
    MS_EIO = 3,           /* I/O error (errmsg says which file) */
    MS_ECODEC = 4,        /* unknown codec id */
    MS_EVERSION = 5,      /* unsupported format version */
    MS_ETRUNCATED = 6,    /* input ends early */
    MS_ETRAILING = 7,     /* bytes after the end of a complete message */
    MS_EMALFORMED = 8,    /* bad structure: wrong type, bad field, bad JSON */
    MS_EBASE64 = 9,       /* invalid base64 text */
    MS_ETOOLARGE = 10,    /* a size beyond a limit */
    MS_ECHECKSUM = 11,    /* checksum mismatch */
    MS_ENOTFOUND = 12,    /* no such key / lease / member */
    MS_ECOMPACTED = 13,   /* revision has been compacted */
    MS_EFUTUREREV = 14,   /* revision is a future revision */
    MS_EDUPKEY = 15,      /* duplicate key given in txn request */
    MS_EKEYEMPTY = 16,    /* key is not provided */
    MS_EEXISTS = 17,      /* already exists */
    MS_ENOLEADER = 18,    /* no leader */
    MS_ENOTLEADER = 19,   /* this node is not the leader */
    MS_ESHUTDOWN = 20,    /* shutting down */
    MS_ENOSPACE = 21,     /* no space */
    MS_ENOTIMPL = 22,     /* not implemented */
    MS_ETIMEOUT = 23,     /* timed out */
    MS_ECORRUPT = 24,     /* corrupt data (errmsg says where) */
    MS_ETOOMANYOPS = 25,  /* too many operations in txn request */
    MS_ELEASE = 26,       /* requested lease not found */
    MS_ERAFT = 27,        /* consensus library error (errmsg has its text) */
    MS_ECANCELED = 28,    /* request canceled */
    MS_ETLS = 29,         /* TLS handshake or certificate refused */
    MS_E_MAX
};

/* Size of the errmsg buffers that long-lived objects carry. */
#define MS_ERRMSG_SIZE 256

/* Returns a static, human-readable message for code; never NULL. */
const char *ms_strerror(int code);

/* Returns the stable short name of code ("MS_ETRUNCATED"); never NULL. */
const char *ms_errname(int code);

/* Formats into errmsg (size bytes, always NUL-terminated) and returns code,
 * so callers can write: return ms_seterr(buf, n, MS_EIO, "open %s", path); */
int ms_seterr(char *errmsg, size_t size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes errmsg with "prefix: " in place (for layers on the way up). */
void ms_prefixerr(char *errmsg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* MS_UTIL_ERROR_H */
