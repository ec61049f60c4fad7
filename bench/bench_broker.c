/*  bench_broker.c - the broker under test, for mdp-bench: mdp-broker or
    mdp-relay from the bench's own bin directory, as a child process (under
    valgrind's callgrind when asked), its endpoint read from the "serving on"
    line of its log, its CPU time and memory read from /proc while it runs.
*/
#include "bench.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  path of a program next to our own executable
static void s_sibling (const char *name, char *path, size_t size)
{
    char self[400];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = 0;
    char *slash = strrchr (self, '/');
    if (slash)
        *slash = 0;
    snprintf (path, size, "%s/%s", slash ? self : ".", name);
}

//  Look for "serving on <endpoint>" in the log written so far.
static bool s_find_endpoint (bench_broker_t *self)
{
    char text[8192];
    ssize_t size = pread (self->log_fd, text, sizeof text - 1, 0);
    if (size <= 0)
        return false;
    text[size] = 0;
    char *line = strstr (text, "serving on ");
    char *endpoint = line ? strstr (line, "tcp://") : NULL;
    if (!endpoint)
        return false;
    size_t len = strcspn (endpoint, " \t\r\n");
    if (len == strlen (endpoint) || len >= sizeof self->endpoint)
        return false; //  the line is not complete yet
    memcpy (self->endpoint, endpoint, len);
    self->endpoint[len] = 0;
    return true;
}

static void s_show_log (bench_broker_t *self)
{
    char text[4096];
    ssize_t size;
    off_t at = 0;
    while ((size = pread (self->log_fd, text, sizeof text, at)) > 0) {
        fwrite (text, 1, (size_t)size, stderr);
        at += size;
    }
}

int bench_broker_start (bench_broker_t *self, broker_kind_t kind, const char *cg_file,
                        char *const extra[], int wait_ms)
{
    char program[512], template[] = "/tmp/mdp-bench-log-XXXXXX";
    s_sibling (kind == BROKER_MDP ? "mdp-broker" : "mdp-relay", program, sizeof program);
    memset (self, 0, sizeof *self);
    self->pid = -1;
    self->log_fd = mkostemp (template, O_CLOEXEC);
    if (self->log_fd < 0) {
        perror ("mdp-bench: log file");
        return -1;
    }
    unlink (template);
    char cg_arg[600];
    char *argv[32];
    int argc = 0;
    if (cg_file) {
        snprintf (self->cg_file, sizeof self->cg_file, "%s", cg_file);
        snprintf (cg_arg, sizeof cg_arg, "--callgrind-out-file=%s", cg_file);
        argv[argc++] = "valgrind";
        argv[argc++] = "--tool=callgrind";
        argv[argc++] = "-q";
        argv[argc++] = "--separate-threads=yes";
        argv[argc++] = "--instr-atstart=no";
        argv[argc++] = cg_arg;
    }
    argv[argc++] = program;
    argv[argc++] = "-e";
    argv[argc++] = "tcp://127.0.0.1:*";
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    self->pid = fork ();
    if (self->pid == 0) {
        int devnull = open ("/dev/null", O_RDWR);
        dup2 (devnull, STDIN_FILENO);
        dup2 (devnull, STDOUT_FILENO);
        dup2 (self->log_fd, STDERR_FILENO);
        execvp (argv[0], argv);
        fprintf (stderr, "mdp-bench: cannot run %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    int64_t deadline = bench_now_ns () + (int64_t)wait_ms * 1000000;
    while (self->pid > 0 && !s_find_endpoint (self)) {
        if (waitpid (self->pid, NULL, WNOHANG) == self->pid || bench_now_ns () > deadline) {
            fprintf (stderr, "mdp-bench: %s did not start; its log:\n", program);
            s_show_log (self);
            bench_broker_stop (self, 1000, false);
            return -1;
        }
        usleep (5000);
    }
    return self->pid > 0 ? 0 : -1;
}

int bench_broker_stop (bench_broker_t *self, int wait_ms, bool show_log)
{
    int status = 0, code = -1;
    if (self->pid > 0) {
        kill (self->pid, SIGTERM);
        int64_t deadline = bench_now_ns () + (int64_t)wait_ms * 1000000;
        pid_t rc;
        while ((rc = waitpid (self->pid, &status, WNOHANG)) == 0 && bench_now_ns () < deadline)
            usleep (5000);
        if (rc == 0) {
            fprintf (stderr, "mdp-bench: the broker did not stop within %d ms; killed\n", wait_ms);
            kill (self->pid, SIGKILL);
            waitpid (self->pid, &status, 0);
        } else if (rc == self->pid && WIFEXITED (status))
            code = WEXITSTATUS (status);
        self->pid = -1;
    }
    if (self->log_fd >= 0) {
        if (show_log || code != 0)
            s_show_log (self);
        close (self->log_fd);
        self->log_fd = -1;
    }
    return code;
}

int64_t bench_proc_cpu_ns (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char file[128];
        snprintf (file, sizeof file, "%s/%.20s/schedstat", path, entry->d_name);
        FILE *stat = fopen (file, "r");
        long long ns = 0;
        if (stat && fscanf (stat, "%lld", &ns) == 1)
            total += ns;
        if (stat)
            fclose (stat);
    }
    closedir (dir);
    return total;
}

long bench_proc_status_kib (pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *file = fopen (path, "r");
    long kib = -1;
    size_t len = strlen (field);
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0 && line[len] == ':') {
            kib = strtol (line + len + 1, NULL, 10);
            break;
        }
    if (file)
        fclose (file);
    return kib;
}

static int64_t s_callgrind_file_ir (const char *path)
{
    FILE *file = fopen (path, "r");
    char line[1024];
    int64_t summary = -1, totals = -1;
    while (file && fgets (line, sizeof line, file)) {
        if (strncmp (line, "summary:", 8) == 0)
            summary = strtoll (line + 8, NULL, 10);
        else if (strncmp (line, "totals:", 7) == 0)
            totals = strtoll (line + 7, NULL, 10);
    }
    if (file)
        fclose (file);
    //  With instrumentation switched on late, "summary:" reads 0.
    return totals >= 0 ? totals : summary;
}

//  With --separate-threads=yes callgrind writes PATH-01 (the main thread),
//  PATH-02 and so on (libzmq's reaper and I/O threads; none for a thread
//  that ran no instrumented code), and an empty PATH.
int64_t bench_callgrind_ir (const char *path, int64_t *main_ir, bool remove)
{
    int64_t total = -1;
    *main_ir = -1;
    for (int thread = 1; thread < 100; thread++) {
        char file[600];
        snprintf (file, sizeof file, "%s-%02d", path, thread);
        int64_t ir = s_callgrind_file_ir (file);
        if (ir < 0)
            continue;
        total = (total < 0 ? 0 : total) + ir;
        if (thread == 1)
            *main_ir = ir;
        if (remove)
            unlink (file);
    }
    if (remove)
        unlink (path);
    return total;
}

int bench_callgrind_control (pid_t pid, const char *state)
{
    char pidtext[32];
    snprintf (pidtext, sizeof pidtext, "%d", (int)pid);
    pid_t child = fork ();
    if (child == 0) {
        int devnull = open ("/dev/null", O_RDWR);
        dup2 (devnull, STDOUT_FILENO);
        dup2 (devnull, STDERR_FILENO);
        execlp ("callgrind_control", "callgrind_control", "-i", state, pidtext, (char *)NULL);
        _exit (127);
    }
    int status = 0;
    if (child < 0 || waitpid (child, &status, 0) != child)
        return -1;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

void bench_raise_fd_limit (long want)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= (rlim_t)want)
        return;
    if (limit.rlim_max < (rlim_t)want) {
        struct rlimit more = {(rlim_t)want, (rlim_t)want};
        if (setrlimit (RLIMIT_NOFILE, &more) == 0)
            return; //  allowed (root): done
    }
    limit.rlim_cur = limit.rlim_max < (rlim_t)want ? limit.rlim_max : (rlim_t)want;
    setrlimit (RLIMIT_NOFILE, &limit);
}
