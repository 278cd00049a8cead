/* log.h - one line per event on stderr: time, level, message. */
#ifndef MS_UTIL_LOG_H
#define MS_UTIL_LOG_H

enum ms_log_level {
    MS_LOG_DEBUG = 0,
    MS_LOG_INFO = 1,
    MS_LOG_WARN = 2,
    MS_LOG_ERROR = 3,
};

/* Sets the minimum level printed (process-wide; default INFO). */
void ms_log_set_level(enum ms_log_level level);

/* Parses "debug|info|warn|error"; returns 0 or MS_EINVAL. */
int ms_log_parse_level(const char *s, enum ms_log_level *out);

/* Writes "2026-11-25T17:00:00.123Z INFO message\n" to stderr. */
void ms_log(enum ms_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ms_debug(...) ms_log(MS_LOG_DEBUG, __VA_ARGS__)
#define ms_info(...) ms_log(MS_LOG_INFO, __VA_ARGS__)
#define ms_warn(...) ms_log(MS_LOG_WARN, __VA_ARGS__)
#define ms_error(...) ms_log(MS_LOG_ERROR, __VA_ARGS__)

#endif /* MS_UTIL_LOG_H */
