/*  test_bridge_codec.c - mdp-amqp-bridge pieces that need no RabbitMQ: the
    Neon MQ Connector body codec (base64 of a JSON string holding a Python
    literal) against Neon's own test vectors and awkward literals, and the
    program's refusal of bad config files (exit 2, a message on stderr).
*/
#include "bridge.h"
#include "testutil.h"
#include <check.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

//  Vectors produced by Neon's own dict_to_b64 (Python: base64 of
//  json.dumps (str (d))).
#define VECTOR1_JSON "{\"message_id\":\"m1\",\"ok\":true,\"none\":null,\"n\":1,\"f\":0.5}"
#define VECTOR1_BODY                                                                               \
    "InsnbWVzc2FnZV9pZCc6ICdtMScsICdvayc6IFRydWUsICdub25lJzogTm9uZSwgJ24nOiAx"                     \
    "LCAnZic6IDAuNX0i"
#define VECTOR2_JSON                                                                               \
    "{\"q\":\"it's\",\"both\":\"a'b\\\"c\",\"nl\":\"x\\ny\",\"u\":\"caf\xc3\xa9 "                  \
    "\xf0\x9f\x98\x80\"}"
#define VECTOR2_BODY                                                                               \
    "InsncSc6IFwiaXQnc1wiLCAnYm90aCc6ICdhXFwnYlwiYycsICdubCc6ICd4XFxueScsICd1"                     \
    "JzogJ2NhZlx1MDBlOSBcdWQ4M2RcdWRlMDAnfSI="

static void s_check_vector (const char *json, const char *body)
{
    cJSON *expected = cJSON_Parse (json);
    ck_assert_ptr_nonnull (expected);
    cJSON *decoded = bridge_neon_decode (body, strlen (body));
    ck_assert_msg (cJSON_Compare (decoded, expected, true), "decoding %s", body);
    size_t size = 0;
    char *encoded = bridge_neon_encode (expected, &size);
    ck_assert_str_eq (encoded, body); //  byte for byte what Neon writes
    ck_assert_uint_eq (size, strlen (body));
    free (encoded);
    cJSON_Delete (decoded);
    cJSON_Delete (expected);
}

START_TEST (test_neon_vectors)
{
    s_check_vector (VECTOR1_JSON, VECTOR1_BODY);
    s_check_vector (VECTOR2_JSON, VECTOR2_BODY);
}
END_TEST

//  Parse a Python literal and compare with the JSON expected (NULL: refused).
static void s_literal (const char *python, const char *json)
{
    cJSON *parsed = bridge_neon_pyparse (python, strlen (python));
    if (!json) {
        ck_assert_msg (parsed == NULL, "accepted %s", python);
        return;
    }
    ck_assert_msg (parsed != NULL, "refused %s", python);
    char *text = mdp_json_print (parsed);
    ck_assert_str_eq (text, json);
    free (text);
    cJSON_Delete (parsed);
}

START_TEST (test_python_literals)
{
    s_literal ("{'a': (1, 2), 'b': (), 'c': (3,), 'd': [True, False, None]}",
               "{\"a\":[1,2],\"b\":[],\"c\":[3],\"d\":[true,false,null]}");
    s_literal ("'\\x41\\u00e9\\U0001F600\\101\\n\\t\\\\\\''", "\"A\xc3\xa9\xf0\x9f\x98\x80"
                                                              "A\\n\\t\\\\'\"");
    s_literal ("\"it's\"", "\"it's\"");
    s_literal ("b'bytes\\x21'", "\"bytes!\"");
    s_literal ("u'text'", "\"text\"");
    s_literal ("123456789012345678901234567890", "123456789012345678901234567890");
    s_literal ("-7", "-7");
    s_literal ("1e+20", "1e+20");
    s_literal ("0.1", "0.1");
    //  Numbers as written; what is Python but not JSON gets its JSON spelling
    s_literal ("[" TU_NUMBERS_LIST "]", "[" TU_NUMBERS_LIST "]");
    s_literal ("[1., +5, 00, 007.50, 1.e5, -0.0, 1E400]", "[1.0,5,0,7.50,1.0e5,-0.0,1E400]");
    s_literal ("{1: 'one', None: 'none', 'k': 1, 'k': 2}",
               "{\"1\":\"one\",\"null\":\"none\",\"k\":2}");
    s_literal ("  { 'x' : [ ] , }  ", "{\"x\":[]}");
    s_literal ("'unknown \\q escape'", "\"unknown \\\\q escape\"");
    //  What Neon's eval would choke on or JSON cannot hold
    s_literal ("{'a': foo}", NULL);
    s_literal ("nan", NULL);
    s_literal ("float('inf')", NULL);
    s_literal ("'\\ud800'", NULL);
    s_literal ("'\\x00'", NULL);
    s_literal ("b'\\xff'", NULL);
    s_literal ("'unterminated", NULL);
    s_literal ("'line\nbreak'", NULL);
    s_literal ("{'a': 1} junk", NULL);
    s_literal ("{1, 2}", NULL);
    s_literal ("", NULL);
    char deep[300] = "";
    for (int index = 0; index < 100; index++)
        strcat (deep, "[");
    s_literal (deep, NULL);
}
END_TEST

//  Whatever JSON goes in comes back out, through the whole body codec.
START_TEST (test_neon_round_trip)
{
    const char *samples[] = {
        "{}", "{\"a\":\"\\u0001\\u007f\\u0080\\u00a0\\u00ad\\\\\\\"'\"}",
        "{\"nested\":{\"list\":[1,-2.5,1e-7,\"x\",[],{}],\"t\":true}}",
        "{\"quotes\":\"'\\\"\",\"only_single\":\"'\",\"newline\":\"a\\r\\nb\"}",
        "{\"big\":9007199254740993,\"neg\":-0.0001,\"e\":12345678901234567890}"};
    for (size_t index = 0; index < sizeof samples / sizeof samples[0]; index++) {
        cJSON *value = cJSON_Parse (samples[index]);
        ck_assert_ptr_nonnull (value);
        size_t size = 0;
        char *body = bridge_neon_encode (value, &size);
        ck_assert_ptr_nonnull (body);
        cJSON *back = bridge_neon_decode (body, size);
        ck_assert_msg (cJSON_Compare (back, value, true), "round trip of %s", samples[index]);
        cJSON_Delete (back);
        cJSON_Delete (value);
        free (body);
    }
}
END_TEST

//  Numbers pass Neon bodies as written, both ways: in the Python literal
//  and back out as JSON (issue 12, item 3).
START_TEST (test_neon_numbers_as_written)
{
    cJSON *value = mdp_json_parse (TU_NUMBERS, strlen (TU_NUMBERS));
    char *literal = bridge_neon_pyrepr (value);
    ck_assert_str_eq (literal, "{'n': [9007199254740993, 12345678901234567890, 0.1, 1e308, -0.0, "
                               "9223372036854775807, -9223372036854775808, "
                               "18446744073709551616]}");
    free (literal);
    size_t size = 0;
    char *body = bridge_neon_encode (value, &size);
    cJSON *back = bridge_neon_decode (body, size);
    char *text = mdp_json_print (back);
    ck_assert_str_eq (text, TU_NUMBERS);
    free (text);
    cJSON_Delete (back);
    free (body);
    cJSON_Delete (value);
}
END_TEST

START_TEST (test_base64)
{
    size_t size = 0;
    unsigned char *data = bridge_neon_b64_decode ("aGk", 3, &size); //  unpadded
    ck_assert_uint_eq (size, 2);
    ck_assert_int_eq (memcmp (data, "hi", 2), 0);
    free (data);
    ck_assert_ptr_null (bridge_neon_b64_decode ("a$==", 4, &size));
    ck_assert_ptr_null (bridge_neon_b64_decode ("a", 1, &size));
    ck_assert_ptr_null (bridge_neon_b64_decode ("YQ==YQ==", 8, &size));
    ck_assert_ptr_null (bridge_neon_decode ("e30=", 4)); //  "{}" is JSON, not a JSON string
    char *text = bridge_neon_b64_encode ("abcd", 4, &size);
    ck_assert_str_eq (text, "YWJjZA==");
    free (text);
}
END_TEST

//  --- config files the program must refuse --------------------------------

//  Run mdp-amqp-bridge -c on a config text; its exit code (-1 if it hung).
static int s_run_with (const char *config, char *err, size_t size)
{
    char path[] = "/tmp/mdp-bridge-config-XXXXXX";
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    ck_assert_int_eq (write (fd, config, strlen (config)), (ssize_t)strlen (config));
    close (fd);
    char errpath[64];
    snprintf (errpath, sizeof errpath, "%s.err", path);
    int errfd = open (errpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    char *const argv[] = {(char *)tu_program ("mdp-amqp-bridge"), "-c", path, NULL};
    pid_t pid = tu_spawn_err (argv, errfd, errfd);
    close (errfd);
    int code = tu_wait_exit (pid, 10000);
    FILE *file = fopen (errpath, "r");
    size_t got = file ? fread (err, 1, size - 1, file) : 0;
    err[got] = 0;
    if (file)
        fclose (file);
    unlink (path);
    unlink (errpath);
    return code;
}

#define USERS "\"users\": {\"svc\": {\"username\": \"guest\", \"password\": \"guest\"}}"
#define ROUTE                                                                                      \
    "\"service\": \"svc\", \"direction\": \"mdp-to-amqp\", \"profile\": \"neon\", \"queue\": "     \
    "\"q\""

START_TEST (test_bad_configs)
{
    const char *bad[][2] = {
        {"{", "not a JSON object"},
        {"{" USERS "}", "routes: must be a non-empty array"},
        {"{" USERS ", \"routes\": [{" ROUTE ", \"colour\": 1}]}", "unknown key \"colour\""},
        {"{" USERS ", \"routes\": [{" ROUTE ", \"stream\": true, \"mdp_protocol\": 1}]}",
         "\"stream\" needs"},
        {"{\"routes\": [{" ROUTE "}]}", "no \"users\" entry \"svc\""},
        {"{" USERS ", \"routes\": [{\"service\": \"svc\", \"direction\": \"both\", "
         "\"profile\": \"neon\", \"queue\": \"q\"}]}",
         "\"direction\""},
        {"{" USERS ", \"routes\": [{\"service\": \"svc\", \"direction\": \"amqp-to-mdp\", "
         "\"profile\": \"kafka\"}]}",
         "\"profile\""},
        {"{" USERS ", \"routes\": [{" ROUTE ", \"concurrency\": 0}]}", "\"concurrency\""},
        {"{" USERS ", \"routes\": [{\"service\": \"mmi.x\", \"direction\": \"mdp-to-amqp\", "
         "\"profile\": \"raw\", \"queue\": \"q\"}]}",
         "\"service\""},
        {"{" USERS ", \"routes\": [{" ROUTE "}, {" ROUTE "}]}", "offered twice"},
        {"{" USERS ", \"routes\": [{\"service\": \"svc\", \"direction\": \"mdp-to-amqp\", "
         "\"profile\": \"raw\"}]}",
         "\"queue\" is required"}};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        char err[2048];
        int code = s_run_with (bad[index][0], err, sizeof err);
        ck_assert_msg (code == 2, "config %zu: exit %d, expected 2", index, code);
        ck_assert_msg (strstr (err, bad[index][1]), "config %zu: stderr lacks '%s': %s", index,
                       bad[index][1], err);
    }
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("bridge_codec");
    TCase *tc = tcase_create ("neon");
    tcase_add_test (tc, test_neon_vectors);
    tcase_add_test (tc, test_python_literals);
    tcase_add_test (tc, test_neon_round_trip);
    tcase_add_test (tc, test_neon_numbers_as_written);
    tcase_add_test (tc, test_base64);
    suite_add_tcase (suite, tc);
    TCase *config = tcase_create ("config");
    tcase_set_timeout (config, 60);
    tcase_add_test (config, test_bad_configs);
    suite_add_tcase (suite, config);
    return tu_run_suite (suite);
}
