/* readindex.c - one outstanding barrier; reads that arrive meanwhile ride
 * on the next one. */
#include "batch/readindex.h"

#include <stddef.h>
#include <string.h>

void ms_readindex_init(struct ms_readindex *ri, const struct ms_read_sink *s)
{
    memset(ri, 0, sizeof(*ri));
    ri->sink = *s;
}

static void fail_list(struct ms_read_waiter *w, int status)
{
    while (w != NULL) {
        struct ms_read_waiter *next = w->next;
        w->cb(w, status);
        w = next;
    }
}

static void issue(struct ms_readindex *ri)
{
    int rc;

    if (ri->outstanding || ri->waiting == NULL)
        return;
    ri->round = ri->waiting;
    ri->waiting = ri->waiting_tail = NULL;
    ri->outstanding = true;
    ri->barriers++;
    rc = ri->sink.barrier(ri->sink.data, ri);
    if (rc != 0) {
        struct ms_read_waiter *round = ri->round;
        ri->round = NULL;
        ri->outstanding = false;
        fail_list(round, rc);
    }
}

void ms_readindex_wait(struct ms_readindex *ri, struct ms_read_waiter *w)
{
    w->next = NULL;
    if (ri->closed) {
        w->cb(w, ri->closed);
        return;
    }
    if (ri->waiting_tail != NULL)
        ri->waiting_tail->next = w;
    else
        ri->waiting = w;
    ri->waiting_tail = w;
    issue(ri);
}

void ms_readindex_done(struct ms_readindex *ri, int status)
{
    struct ms_read_waiter *w = ri->round;

    ri->round = NULL;
    ri->outstanding = false;
    while (w != NULL) {
        struct ms_read_waiter *next = w->next;
        if (status == 0)
            ri->reads++;
        w->cb(w, status);
        w = next;
    }
    if (!ri->closed)
        issue(ri);
}

static bool unlink_from(struct ms_read_waiter **head,
                        struct ms_read_waiter **tail,
                        struct ms_read_waiter *w)
{
    struct ms_read_waiter *prev = NULL;

    for (struct ms_read_waiter *q = *head; q != NULL; prev = q, q = q->next) {
        if (q != w)
            continue;
        if (prev != NULL)
            prev->next = q->next;
        else
            *head = q->next;
        if (tail != NULL && *tail == q)
            *tail = prev;
        return true;
    }
    return false;
}

void ms_readindex_cancel(struct ms_readindex *ri, struct ms_read_waiter *w,
                         int status)
{
    if (unlink_from(&ri->waiting, &ri->waiting_tail, w) ||
        unlink_from(&ri->round, NULL, w))
        w->cb(w, status);
}

void ms_readindex_shutdown(struct ms_readindex *ri, int status)
{
    struct ms_read_waiter *w = ri->waiting;

    ri->closed = status;
    ri->waiting = ri->waiting_tail = NULL;
    fail_list(w, status);
}
