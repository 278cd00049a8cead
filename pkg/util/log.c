/* log.c - stderr logger. The level is the one piece of process-wide state:
 * it is set once from flags before the loop starts. */
#include "util/log.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum ms_log_level min_level = MS_LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void ms_log_set_level(enum ms_log_level level)
{
    min_level = level;
}

int ms_log_parse_level(const char *s, enum ms_log_level *out)
{
    static const char *lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, lower[i]) == 0) {
            *out = (enum ms_log_level)i;
            return 0;
        }
    }
    return MS_EINVAL;
}

void ms_log(enum ms_log_level level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int n;
    va_list ap;

    if (level < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s ",
                  ts.tv_nsec / 1000000, names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
