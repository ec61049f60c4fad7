/*  daemon_proc.c - what makes a program a well-behaved daemon, shared by
    mdp-broker and mdp-http: absolute paths, the pid file (written atomically,
    removed only if it still names us), detaching with -d so that the
    caller sees the daemon's start-up status, and start-up errors.
*/
#include "daemon_proc.h"
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  path made absolute against the current directory; the caller frees it.
char *daemon_proc_absolute (const char *path)
{
    if (path[0] == '/')
        return strdup (path);
    char *cwd = getcwd (NULL, 0), *result = NULL;
    if (cwd && asprintf (&result, "%s/%s", cwd, path) < 0)
        result = NULL;
    free (cwd);
    return result;
}

//  The pid in the pid file at path if that process is alive (and not us), else 0.
pid_t daemon_proc_pidfile_owner (const char *path)
{
    char text[32] = "";
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t size = read (fd, text, sizeof text - 1);
    close (fd);
    long pid = size > 0 ? strtol (text, NULL, 10) : 0;
    if (pid <= 0 || pid == getpid () || (kill ((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    return (pid_t)pid;
}

//  Write our pid to path through a temporary file, so no reader ever sees
//  it half written. Returns 0, or -1 with errno.
int daemon_proc_pidfile_write (const char *path)
{
    char *temp = NULL;
    if (asprintf (&temp, "%s.%d.tmp", path, (int)getpid ()) < 0)
        temp = NULL;
    int fd = temp ? open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int rc = fd < 0 ? -1 : dprintf (fd, "%d\n", (int)getpid ()) > 0 ? 0 : -1;
    int saved = errno;
    if (fd >= 0 && close (fd) != 0)
        rc = -1;
    if (rc == 0 && rename (temp, path) != 0) {
        saved = errno;
        rc = -1;
    }
    if (rc != 0 && temp)
        unlink (temp);
    free (temp);
    errno = saved;
    return rc;
}

//  Remove the pid file if it still names us.
void daemon_proc_pidfile_remove (const char *path)
{
    char text[32] = "";
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t size = read (fd, text, sizeof text - 1);
    close (fd);
    if (size > 0 && strtol (text, NULL, 10) == (long)getpid ())
        unlink (path);
}

//  --------------------------------------------------------------------------
//  Detaching (-d): fork, setsid, fork again. The original process waits on a
//  pipe for the daemon's start-up result and exits with it, so `mdp-broker -d`
//  fails visibly (and with the right status) when a bind fails.

//  Returns the exit status for the original process and the middle one, or
//  -1 in the daemon, with *ready_fd the pipe to report on (daemon_proc_ready).
int daemon_proc_detach (const char *name, int *ready_fd)
{
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC) != 0) {
        fprintf (stderr, "%s: cannot detach: %s\n", name, strerror (errno));
        return 1;
    }
    fflush (NULL);
    pid_t child = fork ();
    if (child < 0) {
        fprintf (stderr, "%s: cannot detach: %s\n", name, strerror (errno));
        return 1;
    }
    if (child > 0) {
        close (fds[1]);
        unsigned char status = 1; //  the daemon died before it said anything
        ssize_t rc;
        while ((rc = read (fds[0], &status, 1)) < 0 && errno == EINTR)
            ;
        close (fds[0]);
        waitpid (child, NULL, 0);
        return rc == 1 ? status : 1;
    }
    close (fds[0]);
    if (setsid () < 0 || (child = fork ()) < 0) {
        unsigned char status = 1;
        if (write (fds[1], &status, 1) < 0)
            fprintf (stderr, "%s: cannot detach: %s\n", name, strerror (errno));
        return 1;
    }
    if (child > 0)
        return 0;
    if (chdir ("/") != 0)
        fprintf (stderr, "%s: chdir /: %s\n", name, strerror (errno));
    umask (022);
    //  Keep no descriptor the caller gave us but stdio and the pipe.
    if (fds[1] > 3)
        close_range (3, (unsigned)fds[1] - 1, 0);
    close_range ((unsigned)fds[1] + 1, ~0U, 0);
    *ready_fd = fds[1];
    return -1;
}

//  Tell the waiting parent (with -d) how start-up ended; on success, let go
//  of the terminal: stdin, stdout and stderr become /dev/null.
void daemon_proc_ready (int *ready_fd, int status)
{
    if (*ready_fd < 0)
        return;
    unsigned char byte = (unsigned char)status;
    if (write (*ready_fd, &byte, 1) != 1)
        status = 1;
    close (*ready_fd);
    *ready_fd = -1;
    int null = status == 0 ? open ("/dev/null", O_RDWR) : -1;
    if (null >= 0) {
        dup2 (null, STDIN_FILENO);
        dup2 (null, STDOUT_FILENO);
        dup2 (null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close (null);
    }
}

void daemon_proc_startup_error (const char *name, bool syslog, const char *fmt, va_list args)
{
    char line[1024];
    vsnprintf (line, sizeof line, fmt, args);
    fprintf (stderr, "%s: %s\n", name, line);
    if (syslog)
        zsys_error ("%s: %s", name, line);
}
