/*  daemon_proc.h - pid file, detaching and paths for mdp-broker and mdp-http
    (daemon_proc.c). Every name starts daemon_proc_.
*/
#ifndef DAEMON_PROC_H_INCLUDED
#define DAEMON_PROC_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

//  path made absolute against the current directory; the caller frees it.
//  NULL on out of memory.
char *daemon_proc_absolute (const char *path);

//  The pid in the pid file at path if that process is alive (and not us), else 0.
pid_t daemon_proc_pidfile_owner (const char *path);

//  Write our pid to path through a temporary file. Returns 0, or -1 with errno.
int daemon_proc_pidfile_write (const char *path);

//  Remove the pid file if it still names us.
void daemon_proc_pidfile_remove (const char *path);

//  Detach (-d): fork, setsid, fork. Returns the exit status for the original
//  and the middle process, or -1 in the daemon, with *ready_fd the pipe on
//  which daemon_proc_ready reports start-up. name prefixes error messages.
int daemon_proc_detach (const char *name, int *ready_fd);

//  Tell the waiting parent (with -d) how start-up ended (0: serving) and close
//  *ready_fd; on success stdin, stdout and stderr become /dev/null. Nothing
//  when *ready_fd < 0.
void daemon_proc_ready (int *ready_fd, int status);

//  A fault at start-up: "name: message" to stderr, which the caller sees even
//  with -d, and to the log too when it goes to syslog.
void daemon_proc_startup_error (const char *name, bool syslog, const char *fmt, va_list args);

#endif
