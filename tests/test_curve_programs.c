/*  test_curve_programs.c - CURVE end to end with the real programs: keys from
    mdp-keygen, mdp-broker with --curve-cert/--curve-keys, mdp-echo-worker and
    mdp-req with their own keys. Strangers and plain peers get nowhere; a key
    removed from the directory is refused once the broker has had SIGHUP.
*/
#include "daemon_harness.h"
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void s_run_quiet (const char *name, const char *arg)
{
    char *program = strdup (tu_program (name));
    char *const argv[] = {program, (char *)arg, NULL};
    int null = open ("/dev/null", O_WRONLY);
    pid_t pid = tu_spawn (argv, null);
    close (null);
    ck_assert_int_eq (tu_wait_exit (pid, 10000), 0);
    free (program);
}

//  mdp-req with our keys (or none); its exit code.
static int s_req_to (const char *service, const char *endpoint, const char *server_key,
                     const char *cert, int msecs)
{
    char *program = strdup (tu_program ("mdp-req")), timeout[16];
    snprintf (timeout, sizeof timeout, "%d", tu_scale (msecs));
    char *argv[16] = {program, "-e", (char *)endpoint, "-t", timeout, "-r", "1"};
    int argc = 7;
    if (cert) {
        argv[argc++] = "--curve-server";
        argv[argc++] = (char *)server_key;
        argv[argc++] = "--curve-cert";
        argv[argc++] = (char *)cert;
    }
    argv[argc++] = (char *)service;
    argv[argc++] = "config.get";
    argv[argc] = NULL;
    int null = open ("/dev/null", O_WRONLY);
    pid_t pid = tu_spawn (argv, null);
    close (null);
    int code = tu_wait_exit (pid, msecs + 10000);
    free (program);
    return code;
}

static int s_req (const char *endpoint, const char *server_key, const char *cert, int msecs)
{
    return s_req_to ("echo", endpoint, server_key, cert, msecs);
}

START_TEST (test_curve_end_to_end)
{
    snprintf (dir, sizeof dir, "/tmp/mdp-curve-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (dir));
    ck_assert_int_eq (chdir (dir), 0);
    mkdir ("keys", 0700);
    s_run_quiet ("mdp-keygen", "broker");
    s_run_quiet ("mdp-keygen", "keys/alice");
    s_run_quiet ("mdp-keygen", "keys/worker");
    s_run_quiet ("mdp-keygen", "eve");
    zcert_t *broker_cert = zcert_load ("broker");
    ck_assert_ptr_nonnull (broker_cert);
    char server_key[41];
    snprintf (server_key, sizeof server_key, "%s", zcert_public_txt (broker_cert));
    zcert_destroy (&broker_cert);
    //  The secret halves must not sit in the allowed-keys directory.
    rename ("keys/alice_secret", "alice_secret");
    rename ("keys/worker_secret", "worker_secret");
    link ("keys/alice", "alice");
    link ("keys/worker", "worker");

    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    char *broker = strdup (tu_program ("mdp-broker"));
    char *const bargv[] = {
        broker, "-e", "tcp://127.0.0.1:*", "--curve-cert", "broker", "--curve-keys", "keys", NULL};
    pid_t bpid = tu_spawn_err (bargv, -1, fds[1]);
    close (fds[1]);
    char *line = tu_read_line_with (fds[0], "serving on ", 10000);
    ck_assert_ptr_nonnull (line);
    char *endpoint = strstr (line, "tcp://");
    *strchr (endpoint, ' ') = 0;

    char *echo = strdup (tu_program ("mdp-echo-worker"));
    char *const wargv[] = {echo,     "-e",   endpoint, "--curve-server", server_key, "--curve-cert",
                           "worker", "echo", NULL};
    pid_t wpid = tu_spawn (wargv, -1);
    //  The worker is in once a keyed request is answered.
    int code = 3;
    for (int i = 0; i < 20 && code != 0; i++)
        code = s_req (endpoint, server_key, "alice", 1000);
    ck_assert_int_eq (code, 0);
    //  A script worker with the same key pair as the echo worker.
    char *exec = strdup (tu_program ("mdp-worker-exec"));
    char *const xargv[] = {exec,       "-e",           endpoint, "--curve-server",
                           server_key, "--curve-cert", "worker", "script",
                           "--",       "/bin/cat",     NULL};
    pid_t xpid = tu_spawn (xargv, -1);
    code = 3;
    for (int i = 0; i < 20 && code != 0; i++)
        code = s_req_to ("script", endpoint, server_key, "alice", 1000);
    ck_assert_int_eq (code, 0);
    ck_assert_int_eq (tu_stop (xpid, SIGTERM, 5000), 0);
    free (exec);
    ck_assert_int_eq (s_req (endpoint, server_key, "eve", 500), 3); //  unknown key
    ck_assert_int_eq (s_req (endpoint, NULL, NULL, 500), 3);        //  plain peer
    //  Revoke alice and reload: her new connections fail the handshake.
    ck_assert_int_eq (unlink ("keys/alice"), 0);
    kill (bpid, SIGHUP);
    char *reloaded = tu_read_line_with (fds[0], "allowed keys in", 10000);
    ck_assert_ptr_nonnull (reloaded);
    free (reloaded);
    ck_assert_int_eq (s_req (endpoint, server_key, "alice", 500), 3);

    ck_assert_int_eq (tu_stop (wpid, SIGTERM, 5000), 0);
    int status = tu_stop (bpid, SIGTERM, 5000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (fds[0]);
    free (line);
    free (broker);
    free (echo);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq (system (command), 0);
}
END_TEST

//  Replace the character at offset (from the opening quote) of the value
//  of key ("secret-key", "public-key") in the certificate file at path.
static void s_garble (const char *path, const char *key, int offset, char with)
{
    char text[1024] = "";
    FILE *file = fopen (path, "r");
    ck_assert_ptr_nonnull (file);
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text[size] = 0;
    char *at = strstr (text, key);
    ck_assert_ptr_nonnull (at);
    at = strchr (at, '"');
    ck_assert_ptr_nonnull (at);
    at[1 + offset] = with;
    file = fopen (path, "w");
    ck_assert_int_eq (fwrite (text, 1, size, file), size);
    fclose (file);
}

//  Copy the key line of src's certificate into dst's (same key name).
static void s_copy_key (const char *dst, const char *src, const char *key)
{
    zconfig_t *from = zconfig_load (src), *to = zconfig_load (dst);
    ck_assert (from && to);
    char path[64];
    snprintf (path, sizeof path, "/curve/%s", key);
    zconfig_put (to, path, zconfig_get (from, path, NULL));
    ck_assert_int_eq (zconfig_save (to, dst), 0);
    zconfig_destroy (&from);
    zconfig_destroy (&to);
}

//  mdp-broker with our certificate and keys/ until it exits (or 10 s).
static int s_broker_run (dh_result_t *result)
{
    const char *args[] = {
        "-e", "tcp://127.0.0.1:*", "--curve-cert", "broker", "--curve-keys", "keys", NULL};
    return dh_run (result, args);
}

//  Keys that do not decode fully, a pair that does not match, a secret file
//  others may read: mdp-broker and libmdp refuse them, naming the file.
START_TEST (test_bad_keys_refused)
{
    snprintf (dir, sizeof dir, "/tmp/mdp-curve-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (dir));
    ck_assert_int_eq (chdir (dir), 0);
    mkdir ("keys", 0700);
    s_run_quiet ("mdp-keygen", "broker");
    s_run_quiet ("mdp-keygen", "alice");
    s_run_quiet ("mdp-keygen", "bob");
    dh_result_t *result = calloc (1, sizeof (dh_result_t));
    //  A bad character in the sixth of eight Z85 groups of the secret key.
    system ("cp broker_secret broker_secret.good");
    s_garble ("broker_secret", "secret-key", 27, '~');
    ck_assert_int_eq (s_broker_run (result), 2);
    ck_assert_msg (strstr (result->err, "broker_secret"), "%s", result->err);
    //  Valid keys, but the public key is not the secret key's.
    system ("cp broker_secret.good broker_secret");
    s_copy_key ("broker_secret", "alice_secret", "public-key");
    ck_assert_int_eq (s_broker_run (result), 2);
    ck_assert_msg (strstr (result->err, "broker_secret"), "%s", result->err);
    //  A secret file the group may read.
    system ("cp broker_secret.good broker_secret");
    ck_assert_int_eq (chmod ("broker_secret", 0640), 0);
    ck_assert_int_eq (s_broker_run (result), 2);
    ck_assert_msg (strstr (result->err, "broker_secret") && strstr (result->err, "0640"), "%s",
                   result->err);
    ck_assert_int_eq (chmod ("broker_secret", 0600), 0);
    //  libmdp: the same checks for a client's own certificate.
    zcert_t *broker_cert = zcert_load ("broker");
    char server_key[41];
    snprintf (server_key, sizeof server_key, "%s", zcert_public_txt (broker_cert));
    zcert_destroy (&broker_cert);
    mdp_client_t *client = mdp_client_new ("tcp://127.0.0.1:1");
    ck_assert_int_eq (mdp_client_set_curve (client, server_key, "bob"), 0);
    s_garble ("bob_secret", "secret-key", 33, '~');
    ck_assert_int_eq (mdp_client_set_curve (client, server_key, "bob"), -1);
    ck_assert_int_eq (errno, EINVAL);
    ck_assert_int_eq (chmod ("alice_secret", 0644), 0);
    ck_assert_int_eq (mdp_client_set_curve (client, server_key, "alice"), -1);
    ck_assert_int_eq (errno, EACCES);
    mdp_client_destroy (&client);
    //  mdp-req exits 2 and names the file.
    char *program = strdup (tu_program ("mdp-req"));
    char *argv[] = {program,
                    "-e",
                    "tcp://127.0.0.1:1",
                    "-t",
                    "100",
                    "--curve-server",
                    server_key,
                    "--curve-cert",
                    "bob",
                    "echo",
                    "x",
                    NULL};
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t pid = tu_spawn_err (argv, fds[1], fds[1]);
    close (fds[1]);
    char *line = tu_read_line_with (fds[0], "bob_secret", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    ck_assert_int_eq (tu_wait_exit (pid, 10000), 2);
    close (fds[0]);
    free (program);
    //  A file in the keys directory that is no certificate is named in the log.
    ck_assert_int_eq (chmod ("alice_secret", 0600), 0);
    //  Valid syntax without a valid key (czmq leaks on a syntax error).
    dh_write_file ("keys/junk", "curve\n    public-key = \"not a key\"\n");
    link ("alice", "keys/alice");
    const char *args[] = {
        "-e", "tcp://127.0.0.1:*", "--curve-cert", "broker", "--curve-keys", "keys", NULL};
    int out_fd, err_fd;
    pid = dh_spawn (args, &out_fd, &err_fd);
    line = tu_read_line_with (err_fd, "keys/junk", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    ck_assert_int_eq (tu_stop (pid, SIGTERM, 5000), 0);
    close (out_fd);
    close (err_fd);
    free (result);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq (system (command), 0);
}
END_TEST

//  The endpoint after "marker" in line, copied into out.
static void s_endpoint_after (const char *line, const char *marker, char *out, size_t size)
{
    const char *at = strstr (line, marker);
    ck_assert_ptr_nonnull (at);
    at += strlen (marker);
    snprintf (out, size, "%.*s", (int)strcspn (at, ", \n"), at);
}

//  mdp-pub with our keys (or none); its exit code.
static int s_pub (const char *endpoint, const char *server_key, const char *cert)
{
    char *program = strdup (tu_program ("mdp-pub"));
    char *argv[12] = {program, "-e", (char *)endpoint, "-t", "1000"};
    int argc = 5;
    if (cert) {
        argv[argc++] = "--curve-server";
        argv[argc++] = (char *)server_key;
        argv[argc++] = "--curve-cert";
        argv[argc++] = (char *)cert;
    }
    argv[argc++] = "sensor.temp";
    argv[argc] = NULL;
    int null = open ("/dev/null", O_WRONLY);
    pid_t pid = tu_spawn_err (argv, null, null);
    close (null);
    int code = tu_wait_exit (pid, 15000);
    free (program);
    return code;
}

//  With CURVE on, the event forwarder is CURVE too: mdp-pub and mdp-sub with
//  allowed keys get events through; a plain mdp-pub gets no forwarder.
START_TEST (test_curve_events)
{
    snprintf (dir, sizeof dir, "/tmp/mdp-curve-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (dir));
    ck_assert_int_eq (chdir (dir), 0);
    mkdir ("keys", 0700);
    s_run_quiet ("mdp-keygen", "broker");
    s_run_quiet ("mdp-keygen", "keys/alice");
    rename ("keys/alice_secret", "alice_secret");
    link ("keys/alice", "alice");
    zcert_t *broker_cert = zcert_load ("broker");
    char server_key[41];
    snprintf (server_key, sizeof server_key, "%s", zcert_public_txt (broker_cert));
    zcert_destroy (&broker_cert);
    const char *args[] = {
        "-e",   "tcp://127.0.0.1:*", "--curve-cert",      "broker",         "--curve-keys",
        "keys", "--pub-endpoint",    "tcp://127.0.0.1:*", "--sub-endpoint", "tcp://127.0.0.1:*",
        NULL};
    int out_fd, err_fd;
    pid_t bpid = dh_spawn (args, &out_fd, &err_fd);
    char *line = tu_read_line_with (err_fd, "publishers connect to", 10000);
    ck_assert_ptr_nonnull (line);
    ck_assert_ptr_nonnull (strstr (line, "CURVE"));
    char pub_ep[128], sub_ep[128];
    s_endpoint_after (line, "publishers connect to ", pub_ep, sizeof pub_ep);
    s_endpoint_after (line, "subscribers to ", sub_ep, sizeof sub_ep);
    free (line);
    char *sub = strdup (tu_program ("mdp-sub"));
    char *sargv[] = {
        sub,        "-e",           sub_ep,  "-n",      "1", "-w", "15000", "--curve-server",
        server_key, "--curve-cert", "alice", "sensor.", NULL};
    int fds[2];
    ck_assert_int_eq (pipe (fds), 0);
    pid_t spid = tu_spawn_err (sargv, -1, fds[1]);
    close (fds[1]);
    line = tu_read_line_with (fds[0], "mdp-sub: subscribed", 10000);
    ck_assert_ptr_nonnull (line);
    free (line);
    ck_assert_int_eq (s_pub (pub_ep, NULL, NULL), 3); //  plain: no handshake
    ck_assert_int_eq (s_pub (pub_ep, server_key, "alice"), 0);
    ck_assert_int_eq (tu_wait_exit (spid, 15000), 0);
    close (fds[0]);
    int status = tu_stop (bpid, SIGTERM, 5000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    close (out_fd);
    close (err_fd);
    free (sub);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    ck_assert_int_eq (system (command), 0);
}
END_TEST

int main (void)
{
    //  The programs are found relative to the repository: take it as absolute
    //  before the test changes into its temporary folder.
    char cwd[512], build[700];
    const char *given = getenv ("MDP_BUILD");
    if (getcwd (cwd, sizeof cwd) && (!given || given[0] != '/')) {
        snprintf (build, sizeof build, "%s/%s", cwd, given && *given ? given : "build");
        setenv ("MDP_BUILD", build, 1);
    }
    Suite *suite = suite_create ("curve-programs");
    TCase *tc = tcase_create ("curve");
    tcase_set_timeout (tc, 120);
    tcase_add_test (tc, test_curve_end_to_end);
    tcase_add_test (tc, test_bad_keys_refused);
    tcase_add_test (tc, test_curve_events);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
