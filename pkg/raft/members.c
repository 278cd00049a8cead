/* members.c - peer addresses, the member list and membership changes. */
#include "raft/priv.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int ms_raft_normalize_address(const char *in, char *out, size_t size,
                              char *errmsg)
{
    char scratch[MS_ERRMSG_SIZE];
    char host[256], ip[INET_ADDRSTRLEN];
    const char *s, *end, *colon, *q;
    struct addrinfo hints, *res = NULL;
    struct in_addr a;
    unsigned long port = 0;
    size_t hlen;
    int rv, n;

    if (errmsg == NULL)
        errmsg = scratch;
    if (in == NULL || in[0] == '\0')
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "empty peer address");
    s = in;
    if (strncasecmp(s, "http://", 7) == 0)
        s += 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        s += 8;
    end = strchr(s, '/');
    if (end != NULL && strcmp(end, "/") != 0)
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "peer address %s: a path is not allowed", in);
    if (end == NULL)
        end = s + strlen(s);
    if (s[0] == '[')
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "peer address %s: IPv6 is not supported", in);
    colon = NULL;
    for (q = s; q < end; q++)
        if (*q == ':')
            colon = q;
    if (colon == NULL || colon + 1 == end)
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "peer address %s: missing port", in);
    hlen = (size_t)(colon - s);
    if (hlen == 0 || hlen >= sizeof host || memchr(s, ':', hlen) != NULL)
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "peer address %s: bad host", in);
    for (q = colon + 1; q < end; q++) {
        if (*q < '0' || *q > '9' || port > 65535)
            return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                             "peer address %s: bad port", in);
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port == 0 || port > 65535)
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "peer address %s: bad port", in);
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    if (inet_pton(AF_INET, host, &a) != 1) {
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        rv = getaddrinfo(host, NULL, &hints, &res);
        if (rv != 0 || res == NULL)
            return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                             "peer address %s: cannot resolve %s to IPv4: "
                             "%s",
                             in, host,
                             rv != 0 ? gai_strerror(rv) : "no address");
        a = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    inet_ntop(AF_INET, &a, ip, sizeof ip);
    n = snprintf(out, size, "%s:%lu", ip, port);
    if (n < 0 || (size_t)n >= size)
        return ms_seterr(errmsg, MS_ERRMSG_SIZE, MS_EINVAL,
                         "peer address %s: too long", in);
    return 0;
}

int ms_raft_members(struct ms_raft *node, struct ms_raft_member **out,
                    size_t *n)
{
    struct ms_raft_priv *p;
    struct ms_raft_member *m;
    const struct raft_configuration *c;
    unsigned i;

    *out = NULL;
    *n = 0;
    if (node == NULL || node->priv == NULL || !node->priv->started ||
        node->priv->raft_closing)
        return MS_EINVAL;
    p = node->priv;
    c = &p->raft.configuration;
    if (c->n == 0)
        return 0;
    m = calloc(c->n, sizeof *m);
    if (m == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOMEM,
                         "raft: members: out of memory");
    for (i = 0; i < c->n; i++) {
        m[i].id = c->servers[i].id;
        snprintf(m[i].address, sizeof m[i].address, "%s",
                 c->servers[i].address);
        switch (c->servers[i].role) {
        case RAFT_VOTER:
            m[i].role = MS_RAFT_VOTER;
            break;
        case RAFT_STANDBY:
            m[i].role = MS_RAFT_STANDBY;
            break;
        default:
            m[i].role = MS_RAFT_SPARE;
            break;
        }
    }
    *out = m;
    *n = c->n;
    return 0;
}

/* --- configuration changes ---------------------------------------------- */

struct change {
    struct raft_change change;
    struct ms_raft_change_req *req;
    struct ms_raft_priv *p;
    struct ms_raft_done done;
    int status;
};

static void deliver_changed(struct ms_raft_done *d)
{
    struct change *x = ms_raft__of(d, struct change, done);
    struct ms_raft_change_req *req = x->req;
    int status = x->status;

    free(x);
    req->cb(req, status);
}

/* Inside libraft: record and queue (node.h, "Calling libraft"). */
static void on_changed(struct raft_change *c, int status)
{
    struct change *x = c->data;

    x->status = ms_raft__code(status);
    if (status == RAFT_LEADERSHIPLOST && x->p->raft_closing)
        x->status = MS_ESHUTDOWN;
    x->p->n_changes--;
    x->done.deliver = deliver_changed;
    ms_raft__defer(x->p, &x->done);
}

/* Shared front of add/assign/remove: checks and allocates the wrapper. */
static int change_begin(struct ms_raft *node, struct ms_raft_change_req *req,
                        ms_raft_change_cb cb, struct change **out)
{
    struct ms_raft_priv *p;
    struct change *x;
    int rc;

    rc = ms_raft__usable(node);
    if (rc != 0)
        return rc;
    p = node->priv;
    if (req == NULL || cb == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: change: no callback");
    rc = ms_raft__can_submit(node, "change");
    if (rc != 0)
        return rc;
    x = calloc(1, sizeof *x);
    if (x == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOMEM,
                         "raft: change: out of memory");
    x->req = req;
    x->p = p;
    x->change.data = x;
    req->cb = cb;
    req->node = node;
    *out = x;
    return 0;
}

static int change_end(struct change *x, int rv, const char *what)
{
    struct ms_raft_priv *p = x->p;

    if (rv != 0) {
        free(x);
        return ms_raft__fail(p, rv, what);
    }
    p->n_changes++;
    return 0;
}

int ms_raft_add(struct ms_raft *node, struct ms_raft_change_req *req,
                uint64_t id, const char *address, ms_raft_change_cb cb)
{
    char addr[MS_RAFT_ADDR_SIZE];
    struct change *x;
    int rc;

    if (node == NULL)
        return MS_EINVAL;
    if (id == 0)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: add: id must be greater than 0");
    rc = ms_raft_normalize_address(address, addr, sizeof addr, node->errmsg);
    if (rc != 0) {
        ms_prefixerr(node->errmsg, sizeof node->errmsg, "raft: add");
        return rc;
    }
    rc = change_begin(node, req, cb, &x);
    if (rc != 0)
        return rc;
    return change_end(
        x, raft_add(&x->p->raft, &x->change, id, addr, on_changed), "add");
}

int ms_raft_assign(struct ms_raft *node, struct ms_raft_change_req *req,
                   uint64_t id, enum ms_raft_role role, ms_raft_change_cb cb)
{
    struct change *x;
    int r, rc;

    switch (role) {
    case MS_RAFT_VOTER:
        r = RAFT_VOTER;
        break;
    case MS_RAFT_STANDBY:
        r = RAFT_STANDBY;
        break;
    case MS_RAFT_SPARE:
        r = RAFT_SPARE;
        break;
    default:
        if (node != NULL)
            ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                      "raft: assign: unknown role %d", (int)role);
        return MS_EINVAL;
    }
    rc = change_begin(node, req, cb, &x);
    if (rc != 0)
        return rc;
    return change_end(
        x, raft_assign(&x->p->raft, &x->change, id, r, on_changed), "assign");
}

int ms_raft_remove(struct ms_raft *node, struct ms_raft_change_req *req,
                   uint64_t id, ms_raft_change_cb cb)
{
    struct change *x;
    int rc;

    rc = change_begin(node, req, cb, &x);
    if (rc != 0)
        return rc;
    return change_end(x, raft_remove(&x->p->raft, &x->change, id, on_changed),
                      "remove");
}

/* --- leadership transfer ------------------------------------------------- */

static void deliver_transferred(struct ms_raft_done *d)
{
    struct ms_raft_xfer *x = ms_raft__of(d, struct ms_raft_xfer, done);
    struct ms_raft_change_req *req = x->req;

    /* x stays allocated until libraft is closed: see struct ms_raft_xfer */
    x->req = NULL;
    if (req != NULL)
        req->cb(req, x->status);
}

/* Inside libraft: record and queue (node.h, "Calling libraft"). */
static void on_transferred(struct raft_transfer *t)
{
    struct ms_raft_xfer *x = t->data;
    struct ms_raft_priv *p = x->p;
    raft_id leader = 0;
    const char *addr = NULL;

    raft_leader(&p->raft, &leader, &addr);
    if (leader == t->id)
        x->status = 0;
    else if (p->raft_closing)
        x->status = MS_ESHUTDOWN;
    else
        x->status = MS_ETIMEOUT;
    x->done.deliver = deliver_transferred;
    ms_raft__defer(p, &x->done);
}

int ms_raft_transfer(struct ms_raft *node, struct ms_raft_change_req *req,
                     uint64_t id, ms_raft_change_cb cb)
{
    struct ms_raft_priv *p;
    struct ms_raft_xfer *x;
    int rc, rv;

    rc = ms_raft__usable(node);
    if (rc != 0)
        return rc;
    p = node->priv;
    if (req == NULL || cb == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: transfer: no callback");
    rc = ms_raft__can_submit(node, "transfer");
    if (rc != 0)
        return rc;
    x = calloc(1, sizeof *x);
    if (x == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOMEM,
                         "raft: transfer: out of memory");
    x->req = req;
    x->p = p;
    x->transfer.data = x;
    req->cb = cb;
    req->node = node;
    rv = raft_transfer(&p->raft, &x->transfer, id, on_transferred);
    if (rv != 0) {
        free(x);
        return ms_raft__fail(p, rv, "transfer");
    }
    x->next = p->xfers;
    p->xfers = x;
    return 0;
}
