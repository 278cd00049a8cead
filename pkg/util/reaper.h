/* reaper.h - delete large files a few MiB at a time, on a thread of its
 * own, so that freeing their blocks never holds up other files' fdatasync.
 *
 * Why: on a file system mounted with online discard (ext4 -o discard, the
 * default of many cloud images), the blocks a deletion frees are discarded
 * inside the journal commit that follows it, and every fdatasync that needs
 * that commit waits. Measured on this project's VM (bench/RESULTS.md, "Old
 * files deleted in steps"): the unlink of a 300 MB file held a concurrent
 * 4 KiB write + fdatasync for 106-160 ms, the unlink of a 32 MiB log segment
 * for about 15 ms. Shrinking the file by MS_REAPER_STEP with an fdatasync
 * after each step spreads that over many small commits: the longest
 * concurrent fdatasync during the deletion of 300 MB was then 1.8-4.1 ms
 * in two runs of three (42 ms in the third, as large as the disk's own
 * outliers), at about 300 MB/s of deletion.
 *
 * The caller first makes the name invisible to whoever lists the directory
 * (a rename), so the slow part never shows a half-deleted file under a name
 * that means something. */
#ifndef MS_UTIL_REAPER_H
#define MS_UTIL_REAPER_H

#include <stddef.h>
#include <stdint.h>

/* bytes freed per step, and the pause after each step */
#define MS_REAPER_STEP (1u << 20)
#define MS_REAPER_PAUSE_US 2500

struct ms_reaper;

struct ms_reaper_stats {
    uint64_t files;         /* deleted */
    uint64_t steps;         /* truncations */
    uint64_t pending_bytes; /* in files queued or being shrunk */
};

/* Starts the thread. Returns 0, or an MS_E code with errmsg filled. */
int ms_reaper_start(struct ms_reaper **out, char *errmsg, size_t n);

/* Queues path for deletion (any thread). If the queue cannot take it (out
 * of memory, or the reaper is stopping), path is unlinked at once. */
void ms_reaper_unlink(struct ms_reaper *r, const char *path);

void ms_reaper_stats(struct ms_reaper *r, struct ms_reaper_stats *st);

/* Waits until nothing is queued or being shrunk; for tests. */
void ms_reaper_drain(struct ms_reaper *r);

/* Stops the thread and frees r (NULL is a no-op). What is still queued is
 * unlinked at once: a stopping process does not wait for pacing. */
void ms_reaper_stop(struct ms_reaper *r);

#endif
