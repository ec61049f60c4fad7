/*  test_daemon.c - mdp-broker as people deploy it: every way a config file or
    a flag can be wrong (exit 2, the key or endpoint named), the layering of
    defaults, file and flags (--print-config), the pid file, -d with -q, the
    systemd notifications, that libmdp.so exports only what mdp.h declares,
    and `make install` / `make uninstall` into a scratch root.
    Runs the real build/bin/mdp-broker. The broker's serving and SIGHUP paths
    are in test_e2e_daemon.c, which also runs under valgrind.
*/
#include "daemon_harness.h"
#include <ctype.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

//  --- configuration errors: exit 2 and the culprit named on stderr ----------

typedef struct {
    const char *file;     //  config file text, or NULL for none
    const char *flags[4]; //  extra flags (NULL-ended)
    const char *named;    //  what stderr must mention
} bad_config_t;

static const bad_config_t s_bad[] = {
    {"{\"heartbeat\": 2500, \"bogus\": 1}", {NULL}, "unknown key \"bogus\""},
    {"{\"curve_secret_key\": \"x\"}", {NULL}, "curve_secret_key"}, //  not yet a key
    {"{\"liveness\": \"3\"}", {NULL}, "\"liveness\""},
    {"{\"verbose\": 1}", {NULL}, "\"verbose\""},
    {"{\"log\": \"file\"}", {NULL}, "\"log\""},
    {"{\"pidfile\": 3}", {NULL}, "\"pidfile\""},
    {"{\"endpoints\": \"tcp://127.0.0.1:*\"}", {NULL}, "\"endpoints\""},
    {"{\"endpoints\": []}", {NULL}, "\"endpoints\""},
    {"{\"endpoints\": [\"nowhere\"]}", {NULL}, "nowhere"},
    {"{\"endpoints\": [\"inproc://broker\"]}", {NULL}, "inproc://broker"},
    {"{\"heartbeat\": 5}", {NULL}, "\"heartbeat\""},
    {"{\"heartbeat\": 1e300}", {NULL}, "\"heartbeat\""},
    {"{\"max_queue\": 0}", {NULL}, "\"max_queue\""},
    {"{\"request_timeout\": 1.5}", {NULL}, "\"request_timeout\""},
    {"{\"max_msg_size\": 0}", {NULL}, "\"max_msg_size\""},
    {"{\"stats_interval\": -1}", {NULL}, "\"stats_interval\""},
    {"{\"liveness\": 2, \"liveness\": 3}", {NULL}, "\"liveness\" appears twice"},
    {"[1, 2]", {NULL}, "JSON object"},
    {"{\"heartbeat\": 1000,\n \"liveness\": }", {NULL}, "not valid JSON (line 2"},
    {NULL, {"-c", "/nonexistent/mdp-broker.json", NULL}, "/nonexistent/mdp-broker.json"},
    {NULL, {"--heartbeat", "abc", NULL}, "--heartbeat"},
    {NULL, {"--max-queue", "0", NULL}, "\"max_queue\""},
    {NULL, {"--log", "nowhere", NULL}, "\"log\""},
    {NULL, {"-e", "tcp://256.0.0.1:5555", NULL}, "tcp://256.0.0.1:5555"},
    {NULL, {"-v", "-q", NULL}, "-q"},
    {NULL, {"--no-such-flag", NULL}, "usage"},
    {"{\"heartbeat\": 1000}", {"--liveness", "0", NULL}, "\"liveness\""},
    //  Event rules cannot be enforced without CURVE: refused, never open.
    {"{\"access\": {\"subscribe\": {\"*\": [\"plugin.\"]}}}", {NULL}, "need CURVE"},
    {"{\"access\": {\"publish\": {}}}", {NULL}, "need CURVE"},
};

START_TEST (test_bad_config_exits_2_naming_it)
{
    const bad_config_t *bad = &s_bad[_i];
    char path[128];
    const char *args[12];
    int nargs = 0;
    if (bad->file) {
        dh_write_file (dh_path (path, sizeof path, "bad.json"), bad->file);
        args[nargs++] = "-c";
        args[nargs++] = path;
    }
    args[nargs++] = "-e"; //  should it start after all, on no fixed port
    args[nargs++] = "tcp://127.0.0.1:*";
    for (int i = 0; bad->flags[i]; i++)
        args[nargs++] = bad->flags[i];
    args[nargs] = NULL;
    static dh_result_t result;
    ck_assert_int_eq (dh_run (&result, args), 2);
    ck_assert_msg (strstr (result.err, bad->named), "stderr lacks '%s': %s", bad->named,
                   result.err);
    ck_assert_str_eq (result.out, "");
}
END_TEST

//  An endpoint somebody else holds: exit 2 at once, naming it; with -d too,
//  and then no pid file is left behind.
START_TEST (test_port_in_use_exits_2)
{
    char *endpoint = NULL;
    zsock_t *holder = tu_router_bound (&endpoint);
    ck_assert_ptr_nonnull (holder);
    char pidfile[128];
    dh_path (pidfile, sizeof pidfile, "broker.pid");
    static dh_result_t result;
    const char *args[] = {"-e", "tcp://127.0.0.1:*", "-e", endpoint, "-p", pidfile, NULL};
    ck_assert_int_eq (dh_run (&result, args), 2);
    ck_assert_ptr_nonnull (strstr (result.err, endpoint));
    ck_assert_ptr_nonnull (strstr (result.err, "in use"));
    const char *detached[] = {"-d", "-e", endpoint, "-p", pidfile, NULL};
    ck_assert_int_eq (dh_run (&result, detached), 2);
    ck_assert_ptr_nonnull (strstr (result.err, endpoint));
    ck_assert (dh_file_gone (pidfile));
    zsock_destroy (&holder);
    zstr_free (&endpoint);
}
END_TEST

//  --- --print-config: defaults < file < flags --------------------------------

//  Run --print-config with args and parse what it prints.
static cJSON *s_print_config (const char *const args[])
{
    const char *all[DH_MAX_ARGS + 1] = {"--print-config"};
    for (int i = 0; args[i] && i < DH_MAX_ARGS - 1; i++)
        all[i + 1] = args[i];
    static dh_result_t result;
    ck_assert_int_eq (dh_run (&result, all), 0);
    ck_assert_str_eq (result.err, "");
    cJSON *json = cJSON_ParseWithOpts (result.out, NULL, false);
    ck_assert_ptr_nonnull (json);
    return json;
}

static double s_number (cJSON *json, const char *key)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (json, key);
    ck_assert_msg (cJSON_IsNumber (item), "no number '%s'", key);
    return item->valuedouble;
}

static const char *s_string (cJSON *json, const char *key)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive (json, key);
    ck_assert_msg (cJSON_IsString (item), "no string '%s'", key);
    return item->valuestring;
}

START_TEST (test_print_config_flags_over_file_over_defaults)
{
    char path[128];
    dh_write_file (dh_path (path, sizeof path, "broker.json"),
                   "{\"heartbeat\": 1000, \"liveness\": 5, \"log\": \"syslog\", \"verbose\": true,"
                   " \"endpoints\": [\"tcp://127.0.0.1:7001\", \"ipc:///tmp/x.ipc\"]}");
    const char *args[] = {"-c", path, "--heartbeat", "2000", "-q", NULL};
    cJSON *json = s_print_config (args);
    ck_assert_int_eq (s_number (json, "heartbeat"), 2000);             //  flag
    ck_assert_int_eq (s_number (json, "liveness"), 5);                 //  file
    ck_assert_str_eq (s_string (json, "log"), "syslog");               //  file
    ck_assert (cJSON_IsFalse (cJSON_GetObjectItem (json, "verbose"))); //  -q beats the file
    ck_assert_int_eq (s_number (json, "max_queue"), 10000);            //  default
    ck_assert_int_eq (s_number (json, "request_timeout"), 30);         //  default
    cJSON *endpoints = cJSON_GetObjectItem (json, "endpoints");
    ck_assert_int_eq (cJSON_GetArraySize (endpoints), 2);
    ck_assert_str_eq (cJSON_GetArrayItem (endpoints, 1)->valuestring, "ipc:///tmp/x.ipc");
    cJSON_Delete (json);
    //  -e on the command line replaces the file's endpoints.
    const char *args2[] = {
        "-c", path,        "-e", "tcp://127.0.0.1:7002", "--stats-interval", "60",
        "-p", "run/b.pid", NULL};
    json = s_print_config (args2);
    endpoints = cJSON_GetObjectItem (json, "endpoints");
    ck_assert_int_eq (cJSON_GetArraySize (endpoints), 1);
    ck_assert_str_eq (cJSON_GetArrayItem (endpoints, 0)->valuestring, "tcp://127.0.0.1:7002");
    ck_assert_int_eq (s_number (json, "stats_interval"), 60);
    ck_assert_str_eq (s_string (json, "pidfile"), "run/b.pid");
    ck_assert (cJSON_IsTrue (cJSON_GetObjectItem (json, "verbose")));
    cJSON_Delete (json);
}
END_TEST

//  What --print-config prints is a config file that says the same again.
START_TEST (test_print_config_round_trips)
{
    const char *args[] = {"--max-queue", "7", "--max-msg-size", "65536", "--liveness", "4", NULL};
    cJSON *first = s_print_config (args);
    char *text = cJSON_Print (first);
    char path[128];
    dh_write_file (dh_path (path, sizeof path, "printed.json"), text);
    const char *again[] = {"-c", path, NULL};
    cJSON *second = s_print_config (again);
    ck_assert (cJSON_Compare (first, second, true));
    ck_assert_int_eq (s_number (second, "max_msg_size"), 65536);
    free (text);
    cJSON_Delete (first);
    cJSON_Delete (second);
}
END_TEST

//  etc/mdp-broker.json holds every key, each at its default.
START_TEST (test_example_config_is_the_defaults)
{
    const char *none[] = {NULL};
    cJSON *defaults = s_print_config (none);
    const char *args[] = {"-c", "etc/mdp-broker.json", NULL};
    cJSON *example = s_print_config (args);
    ck_assert (cJSON_Compare (defaults, example, true));
    FILE *file = fopen ("etc/mdp-broker.json", "r");
    ck_assert_ptr_nonnull (file);
    char text[4096];
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text[size] = 0;
    cJSON *raw = cJSON_ParseWithOpts (text, NULL, true);
    ck_assert_int_eq (cJSON_GetArraySize (raw), cJSON_GetArraySize (defaults));
    cJSON_Delete (raw);
    cJSON_Delete (defaults);
    cJSON_Delete (example);
}
END_TEST

START_TEST (test_version_and_help)
{
    static dh_result_t result;
    const char *version[] = {"-V", NULL};
    ck_assert_int_eq (dh_run (&result, version), 0);
    char expected[64];
    snprintf (expected, sizeof expected, "mdp-broker %d.%d.%d\n", MDP_VERSION_MAJOR,
              MDP_VERSION_MINOR, MDP_VERSION_PATCH);
    ck_assert_str_eq (result.out, expected);
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq (dh_run (&result, help), 0);
    ck_assert_ptr_nonnull (strstr (result.out, "--print-config"));
    const char *extra[] = {"serve", NULL};
    ck_assert_int_eq (dh_run (&result, extra), 2);
}
END_TEST

//  --- the pid file and -d -q ----------------------------------------------

//  A pid file naming a live process (this test) stops start-up: exit 1.
START_TEST (test_pidfile_of_live_process_refuses)
{
    char pidfile[128], text[32];
    snprintf (text, sizeof text, "%d\n", (int)getpid ());
    dh_write_file (dh_path (pidfile, sizeof pidfile, "broker.pid"), text);
    static dh_result_t result;
    const char *args[] = {"-p", pidfile, "-e", "tcp://127.0.0.1:*", NULL};
    ck_assert_int_eq (dh_run (&result, args), 1);
    ck_assert_ptr_nonnull (strstr (result.err, "already running"));
    ck_assert_int_eq (dh_read_pidfile (pidfile), getpid ()); //  left alone
}
END_TEST

//  A stale pid file (its process is gone) is replaced, and removed at exit.
START_TEST (test_stale_pidfile_is_replaced)
{
    pid_t dead = fork ();
    if (dead == 0)
        _exit (0);
    ck_assert_int_eq (waitpid (dead, NULL, 0), dead);
    char pidfile[128], text[32];
    snprintf (text, sizeof text, "%d\n", (int)dead);
    dh_write_file (dh_path (pidfile, sizeof pidfile, "broker.pid"), text);
    int out, err;
    const char *args[] = {"-p", pidfile, "-e", "tcp://127.0.0.1:*", NULL};
    pid_t pid = dh_spawn (args, &out, &err);
    char endpoint[256];
    ck_assert (dh_endpoint (err, endpoint, sizeof endpoint, 5000));
    ck_assert_int_eq (dh_read_pidfile (pidfile), pid); //  written before "serving"
    int status = tu_stop (pid, SIGINT, 5000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    ck_assert (dh_file_gone (pidfile));
    close (out);
    close (err);
}
END_TEST

//  -d -q: the command returns once the broker serves, having said nothing
//  (no info lines); the pid file names the detached broker.
START_TEST (test_quiet_daemon_says_nothing)
{
    char pidfile[128];
    dh_path (pidfile, sizeof pidfile, "broker.pid");
    static dh_result_t result;
    const char *args[] = {"-d", "-q", "-p", pidfile, "-e", "tcp://127.0.0.1:*", NULL};
    int status = dh_run (&result, args);
    pid_t pid = dh_read_pidfile (pidfile);
    bool alive = pid > 0 && !dh_gone ((void *)(intptr_t)pid);
    bool stopped = dh_stop_detached (pid, 5000);
    ck_assert_int_eq (status, 0);
    ck_assert_str_eq (result.err, "");
    ck_assert_str_eq (result.out, "");
    ck_assert (alive);
    ck_assert (stopped);
    ck_assert (tu_wait_for (dh_file_gone, pidfile, 2000));
}
END_TEST

//  --- systemd notifications -----------------------------------------------

//  The next notification on sock, or "" after timeout_ms.
static const char *s_notification (int sock, int timeout_ms)
{
    static char text[256];
    struct pollfd item = {sock, POLLIN, 0};
    text[0] = 0;
    if (poll (&item, 1, tu_scale (timeout_ms)) == 1) {
        ssize_t size = recv (sock, text, sizeof text - 1, 0);
        text[size > 0 ? size : 0] = 0;
    }
    return text;
}

//  Built with libsystemd (as the Makefile does when pkg-config finds it), the
//  broker tells NOTIFY_SOCKET: READY once bound, RELOADING and READY around
//  SIGHUP, STOPPING at SIGTERM.
START_TEST (test_systemd_notifications)
{
    if (system ("pkg-config --exists libsystemd") != 0) {
        printf ("test_systemd_notifications: no libsystemd, nothing to check\n");
        return;
    }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    dh_path (address.sun_path, sizeof address.sun_path, "notify");
    int sock = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq (bind (sock, (struct sockaddr *)&address, sizeof address), 0);
    setenv ("NOTIFY_SOCKET", address.sun_path, 1);
    int out, err;
    const char *args[] = {"-e", "tcp://127.0.0.1:*", NULL};
    pid_t pid = dh_spawn (args, &out, &err);
    ck_assert_str_eq (s_notification (sock, 5000), "READY=1");
    kill (pid, SIGHUP);
    ck_assert_str_eq (s_notification (sock, 5000), "RELOADING=1");
    ck_assert_str_eq (s_notification (sock, 5000), "READY=1");
    kill (pid, SIGTERM);
    ck_assert_str_eq (s_notification (sock, 5000), "STOPPING=1");
    ck_assert_int_eq (tu_wait_exit (pid, 5000), 0);
    close (sock);
    close (out);
    close (err);
}
END_TEST

//  --- the library's exports ------------------------------------------------

//  Every symbol libmdp.so defines for others is a function mdp.h declares
//  with MDP_EXPORT: -fvisibility=hidden holds.
START_TEST (test_libmdp_exports_only_mdp_h)
{
    FILE *header = fopen ("include/mdp.h", "r");
    ck_assert_ptr_nonnull (header);
    static char text[65536], declared[8192] = " ";
    size_t size = fread (text, 1, sizeof text - 1, header);
    fclose (header);
    text[size] = 0;
    int count = 0;
    for (char *at = text; (at = strstr (at, "\nMDP_EXPORT ")); at++) {
        char *paren = strchr (at, '(');
        char *end = paren;
        while (end > at && end[-1] == ' ')
            end--;
        char *start = end;
        while (start > at && (isalnum ((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        size_t used = strlen (declared);
        snprintf (declared + used, sizeof declared - used, "%.*s ", (int)(end - start), start);
        count++;
    }
    ck_assert_int_gt (count, 20);
    char command[512];
    snprintf (command, sizeof command, "nm -D --defined-only %s/lib/libmdp.so",
              getenv ("MDP_BUILD") ? getenv ("MDP_BUILD") : "build");
    FILE *nm = popen (command, "r");
    ck_assert_ptr_nonnull (nm);
    char line[512];
    int exported = 0;
    while (fgets (line, sizeof line, nm)) {
        char address[64], type[8], name[256], wanted[260];
        if (sscanf (line, "%63s %7s %255s", address, type, name) != 3)
            continue;
        snprintf (wanted, sizeof wanted, " %s ", name);
        ck_assert_msg (strstr (declared, wanted), "libmdp.so exports '%s' (%s), not in mdp.h", name,
                       type);
        ck_assert_msg (strcmp (type, "T") == 0, "'%s' is exported as %s, not a function", name,
                       type);
        exported++;
    }
    ck_assert_int_eq (pclose (nm), 0);
    ck_assert_int_gt (exported, 20);
}
END_TEST

//  libmdp(3) names every function mdp.h declares.
START_TEST (test_libmdp_man_page_lists_mdp_h)
{
    FILE *header = fopen ("include/mdp.h", "r"), *page = fopen ("man/libmdp.3", "r");
    ck_assert (header && page);
    static char text[65536], man[65536];
    text[fread (text, 1, sizeof text - 1, header)] = 0;
    man[fread (man, 1, sizeof man - 1, page)] = 0;
    fclose (header);
    fclose (page);
    for (char *at = text; (at = strstr (at, "\nMDP_EXPORT ")); at++) {
        char *end = strchr (at, '(');
        while (end > at && end[-1] == ' ')
            end--;
        char *start = end, name[128], spaced[140], alone[140];
        while (start > at && (isalnum ((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        snprintf (name, sizeof name, "%.*s", (int)(end - start), start);
        snprintf (spaced, sizeof spaced, "\n.BR %s ", name);
        snprintf (alone, sizeof alone, "\n.BR %s\n", name);
        ck_assert_msg (strstr (man, spaced) || strstr (man, alone), "man/libmdp.3 does not list %s",
                       name);
    }
}
END_TEST

//  Every long flag --help shows is in the OPTIONS section of mdp-broker(1),
//  written the man way (\-\-flag).
START_TEST (test_broker_man_page_lists_every_flag)
{
    static dh_result_t result;
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq (dh_run (&result, help), 0);
    FILE *page = fopen ("man/mdp-broker.1", "r");
    ck_assert_ptr_nonnull (page);
    static char man[65536];
    man[fread (man, 1, sizeof man - 1, page)] = 0;
    fclose (page);
    char *options = strstr (man, "\n.SH OPTIONS"),
         *end = options ? strstr (options + 1, "\n.SH ") : NULL;
    ck_assert (options && end);
    *end = 0;
    int flags = 0;
    for (char *at = result.out; (at = strstr (at, "--")); flags++) {
        char flag[64], written[140] = "\\-\\-";
        at += 2;
        snprintf (flag, sizeof flag, "%.*s", (int)strspn (at, "abcdefghijklmnopqrstuvwxyz-"), at);
        at += strlen (flag);
        for (char *c = flag; *c; c++)
            snprintf (written + strlen (written), sizeof written - strlen (written), "%s",
                      *c == '-' ? "\\-" : (char[]){*c, 0});
        ck_assert_msg (strstr (options, written), "mdp-broker(1) OPTIONS lacks --%s", flag);
    }
    ck_assert_int_ge (flags, 20);
}
END_TEST

//  --- make install / uninstall ----------------------------------------------

static void s_shell (const char *fmt, ...)
{
    char command[2048];
    va_list args;
    va_start (args, fmt);
    vsnprintf (command, sizeof command, fmt, args);
    va_end (args);
    int rc = system (command);
    ck_assert_msg (rc == 0, "failed (%d): %s", rc, command);
}

static void s_expect_file_text (const char *path, const char *needle)
{
    FILE *file = fopen (path, "r");
    ck_assert_msg (file != NULL, "missing %s", path);
    static char text[16384];
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text[size] = 0;
    ck_assert_msg (strstr (text, needle), "%s lacks '%s'", path, needle);
}

static const char *s_program =
    "#include <mdp.h>\n"
    "int main (void)\n"
    "{\n"
    "    mdp_msg_t *msg = mdp_msg_new (\"config.get\", cJSON_Parse (\"{\\\"key\\\": 42}\"));\n"
    "    zmsg_t *frames = zmsg_new ();\n"
    "    if (!msg || mdp_msg_encode (msg, frames) != 0)\n"
    "        return 1;\n"
    "    mdp_msg_t *copy = mdp_msg_decode (frames);\n"
    "    char *json = copy ? mdp_msg_to_json (copy) : NULL;\n"
    "    printf (\"%s\\n\", json ? json : \"?\");\n"
    "    free (json);\n"
    "    mdp_msg_destroy (&copy);\n"
    "    mdp_msg_destroy (&msg);\n"
    "    zmsg_destroy (&frames);\n"
    "    return 0;\n"
    "}\n";

//  Install into a scratch root, build a program against it through
//  pkg-config, run it, then uninstall and find nothing left.
START_TEST (test_make_install_and_uninstall)
{
    const char *build = getenv ("MDP_BUILD") ? getenv ("MDP_BUILD") : "build";
    bool san = getenv ("MDP_TEST_SAN") && *getenv ("MDP_TEST_SAN") == '1';
    const char *make = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory";
    char root[128], path[256];
    dh_path (root, sizeof root, "root");
    s_shell ("%s install DESTDIR='%s' PREFIX=/usr BUILD='%s'%s >'%s/make.log' 2>&1", make, root,
             build, san ? " SAN=1" : "", dh_dir);
    static const char *files[] = {"usr/lib/libmdp.so.0.1.0",
                                  "usr/lib/libmdp.a",
                                  "usr/include/mdp.h",
                                  "usr/bin/mdp-broker",
                                  "usr/bin/mdp-req",
                                  "usr/share/man/man1/mdp-broker.1",
                                  "usr/share/man/man1/mdp-req.1",
                                  "usr/share/man/man3/libmdp.3",
                                  NULL};
    for (int i = 0; files[i]; i++) {
        snprintf (path, sizeof path, "%s/%s", root, files[i]);
        ck_assert_msg (access (path, F_OK) == 0, "not installed: %s", path);
    }
    snprintf (path, sizeof path, "%s/usr/lib/pkgconfig/libmdp.pc", root);
    s_expect_file_text (path, "Requires: libczmq libzmq libcjson");
    s_expect_file_text (path, "Version: 0.1.0");
    snprintf (path, sizeof path, "%s/usr/lib/systemd/system/mdp-broker.service", root);
    s_expect_file_text (path, "ExecStart=/usr/bin/mdp-broker -c /usr/etc/mdp/mdp-broker.json");
    snprintf (path, sizeof path, "%s/usr/etc/mdp/mdp-broker.json", root);
    s_expect_file_text (path, "\"endpoints\"");
    s_shell ("test \"$(readlink '%s/usr/lib/libmdp.so')\" = libmdp.so.0", root);
    s_shell ("test \"$(readlink '%s/usr/lib/libmdp.so.0')\" = libmdp.so.0.1.0", root);
    s_shell ("readelf -d '%s/usr/lib/libmdp.so.0.1.0' | grep -q 'SONAME.*\\[libmdp.so.0\\]'", root);

    //  A program built and run against the installed tree only.
    snprintf (path, sizeof path, "%s/prog.c", dh_dir);
    dh_write_file (path, s_program);
    s_shell ("cd '%s' && export PKG_CONFIG_SYSROOT_DIR='%s' PKG_CONFIG_PATH='%s/usr/lib/pkgconfig'"
             " PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1"
             " && cc %s -o prog prog.c $(pkg-config --cflags --libs libmdp) 2>cc.log",
             dh_dir, root, root, san ? "-fsanitize=address,undefined" : "");
    s_shell ("cd '%s' && LD_LIBRARY_PATH='%s/usr/lib' ./prog >prog.out"
             " && LD_LIBRARY_PATH='%s/usr/lib' ldd prog | grep -q '%s/usr/lib/libmdp.so.0'",
             dh_dir, root, root, root);
    snprintf (path, sizeof path, "%s/prog.out", dh_dir);
    s_expect_file_text (path, "{\"action\":\"config.get\",\"data\":{\"key\":42}}");

    s_shell ("%s uninstall DESTDIR='%s' PREFIX=/usr BUILD='%s' >>'%s/make.log' 2>&1", make, root,
             build, dh_dir);
    s_shell ("test -z \"$(find '%s' ! -type d)\"", root);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("daemon");
    TCase *tc = tcase_create ("daemon");
    tcase_add_checked_fixture (tc, dh_setup, dh_teardown);
    tcase_set_timeout (tc, tu_scale (60));
    tcase_add_loop_test (tc, test_bad_config_exits_2_naming_it, 0,
                         (int)(sizeof s_bad / sizeof s_bad[0]));
    tcase_add_test (tc, test_port_in_use_exits_2);
    tcase_add_test (tc, test_print_config_flags_over_file_over_defaults);
    tcase_add_test (tc, test_print_config_round_trips);
    tcase_add_test (tc, test_example_config_is_the_defaults);
    tcase_add_test (tc, test_version_and_help);
    tcase_add_test (tc, test_pidfile_of_live_process_refuses);
    tcase_add_test (tc, test_stale_pidfile_is_replaced);
    tcase_add_test (tc, test_quiet_daemon_says_nothing);
    tcase_add_test (tc, test_systemd_notifications);
    tcase_add_test (tc, test_libmdp_exports_only_mdp_h);
    tcase_add_test (tc, test_libmdp_man_page_lists_mdp_h);
    tcase_add_test (tc, test_broker_man_page_lists_every_flag);
    suite_add_tcase (suite, tc);
    //  make install may have to build first: give it time.
    TCase *install = tcase_create ("install");
    tcase_add_checked_fixture (install, dh_setup, dh_teardown);
    tcase_set_timeout (install, tu_scale (600));
    tcase_add_test (install, test_make_install_and_uninstall);
    suite_add_tcase (suite, install);
    return tu_run_suite (suite);
}
