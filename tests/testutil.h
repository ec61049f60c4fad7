/*  testutil.h - small helpers shared by the Check suites: bounded waits on a
    condition (never sleep-and-hope), paths to the built programs, and child
    processes that are always reaped.
*/
#ifndef TESTUTIL_H_INCLUDED
#define TESTUTIL_H_INCLUDED

#include "mdp.h"
#include <check.h>
#include <czmq.h>
#include <stdbool.h>
#include <sys/types.h>

//  Poll cond (arg) every few msecs until it is true or timeout_ms passes.
//  Returns the last value of cond.
bool tu_wait_for (bool (*cond) (void *arg), void *arg, int timeout_ms);

//  Path of a built program, e.g. tu_program ("mdp-req") -> "build/bin/mdp-req",
//  taken from $MDP_BUILD (default "build"). Returns a static buffer.
const char *tu_program (const char *name);

//  Start argv[0] with argv as a child process (stdout to out_fd if >= 0, else
//  inherited). Returns the pid, or -1.
pid_t tu_spawn (char *const argv[], int out_fd);

//  As tu_spawn, with stderr to err_fd as well if >= 0.
pid_t tu_spawn_err (char *const argv[], int out_fd, int err_fd);

//  Read lines from fd until one contains needle, at most timeout_ms. Returns
//  that line (the caller frees it) or NULL.
char *tu_read_line_with (int fd, const char *needle, int timeout_ms);

//  Send sig to pid and wait for it to end, at most timeout_ms, then SIGKILL.
//  Returns the exit status as from waitpid, or -1.
int tu_stop (pid_t pid, int sig, int timeout_ms);

//  Wait for pid to end by itself, at most timeout_ms. Returns its exit code
//  (0..255), 128+signal if it was killed, or -1 on timeout (it is then killed).
int tu_wait_exit (pid_t pid, int timeout_ms);

//  Bind a fresh ROUTER to tcp://127.0.0.1:* and return it; *endpoint_p gets
//  the real endpoint (the caller frees it).
zsock_t *tu_router_bound (char **endpoint_p);

//  Receive one message on sock within timeout msecs (scaled), or NULL.
zmsg_t *tu_recv (zsock_t *sock, int timeout_ms);

//  Assert (Check) that msg has exactly count frames, equal to the strings
//  given (NULL skips a frame, e.g. the routing id). msg stays the caller's.
void tu_assert_frames (zmsg_t *msg, int count, ...);

//  --- a fake broker: a bare ROUTER in the test's own thread ---------------

//  Send to the peer of request (whose first frame is its routing id): that
//  routing id, then first (taken; may be NULL), then count string frames.
void tu_send_to (zsock_t *router, zmsg_t *request, zframe_t *first, int count, ...);

//  Answer request on its envelope: its frames up to and with the empty
//  delimiter, then count string frames (MDP/0.2 asynchronous clients).
void tu_answer (zsock_t *router, zmsg_t *request, int count, ...);

//  The 8-byte big-endian correlation frame of request id.
zframe_t *tu_id_frame (uint64_t id);

//  Two fake brokers and the endpoint list "A,B" a client is given.
typedef struct {
    zsock_t *a, *b; //  the fake brokers
    char *list;     //  "endpointA,endpointB"
} tu_pair_t;

//  Bind two fake brokers. tu_pair_destroy undoes it.
tu_pair_t tu_pair_new (void);
void tu_pair_destroy (tu_pair_t *pair);

//  --- real peers ----------------------------------------------------------

//  The body of a worker actor: signal pipe, then let the worker process
//  what comes until the actor is destroyed; destroys the worker.
void tu_worker_run (zsock_t *pipe, mdp_worker_t **worker_p);

//  Poll the broker at endpoint (a fresh client each time) until it knows a
//  worker for service, at most timeout_ms. Returns true if it does.
bool tu_wait_service (const char *endpoint, const char *service, int timeout_ms);

//  A client for the broker at endpoint: timeout_ms (scaled) per attempt, one
//  attempt. The caller destroys it.
mdp_client_t *tu_client (const char *endpoint, int timeout_ms);

//  Run a program to its end, reading its stdout into out (NUL-ended) as it
//  goes, at most msecs. Returns its exit code as tu_wait_exit.
int tu_run_capture (char *const argv[], char *out, size_t size, int msecs);

//  Run suite (taken) and return main's exit code: 0 when every test passed.
int tu_run_suite (Suite *suite);

//  The numbers of issue 12 item 3, which every data path must carry as
//  written (compared as text): TU_NUMBERS_IN as a user types it, TU_NUMBERS
//  as any unformatted printer must give it back.
#define TU_NUMBERS_LIST                                                                            \
    "9007199254740993,12345678901234567890,0.1,1e308,-0.0,9223372036854775807,"                    \
    "-9223372036854775808,18446744073709551616"
#define TU_NUMBERS "{\"n\":[" TU_NUMBERS_LIST "]}"
#define TU_NUMBERS_IN                                                                              \
    "{\"n\": [9007199254740993, 12345678901234567890, 0.1, 1e308, -0.0, "                          \
    "9223372036854775807, -9223372036854775808, 18446744073709551616]}"

//  True when running under valgrind (MDP_TEST_SLOW=1): waits scale up.
int tu_scale (int msecs);

#endif
