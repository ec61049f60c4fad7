/*  test_msg.c - Check suite for mdp_msg_t: building messages, the body codec
    [action][json] in both directions, what a peer can send that must be
    refused (EPROTO, never a crash), error replies and the JSON rendering.
*/
#include "mdp.h"
#include "mdp_msg_private.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>
#include <string.h>

//  Build a body zmsg from n frames given as (data, size) pairs.
static zmsg_t *s_body (int frames, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, frames);
    for (int index = 0; index < frames; index++) {
        const char *data = va_arg (args, const char *);
        size_t size = va_arg (args, size_t);
        zmsg_addmem (msg, data, size);
    }
    va_end (args);
    return msg;
}

//  Decode msg and expect EPROTO.
static void s_assert_refused (zmsg_t *msg)
{
    errno = 0;
    mdp_msg_t *decoded = mdp_msg_decode (msg);
    ck_assert_ptr_null (decoded);
    ck_assert_int_eq (errno, EPROTO);
    zmsg_destroy (&msg);
}

START_TEST (test_new_and_accessors)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddStringToObject (data, "key", "value");
    mdp_msg_t *msg = mdp_msg_new ("config.get", data);
    ck_assert_ptr_nonnull (msg);
    ck_assert_str_eq (mdp_msg_action (msg), "config.get");
    ck_assert_ptr_eq (mdp_msg_data (msg), data);
    ck_assert (!mdp_msg_is_error (msg));
    ck_assert_int_eq (mdp_msg_error_code (msg), 0);

    //  The data may be changed in place, or replaced
    cJSON_AddNumberToObject (mdp_msg_data (msg), "n", 1);
    ck_assert (cJSON_HasObjectItem (mdp_msg_data (msg), "n"));
    mdp_msg_set_data (msg, NULL);
    ck_assert (cJSON_IsObject (mdp_msg_data (msg)));
    ck_assert_ptr_null (mdp_msg_data (msg)->child);
    mdp_msg_destroy (&msg);
    ck_assert_ptr_null (msg);
    mdp_msg_destroy (&msg); //  NULL-safe
    mdp_msg_destroy (NULL);
}
END_TEST

START_TEST (test_new_null_data_is_empty_object)
{
    mdp_msg_t *msg = mdp_msg_new ("device.get", NULL);
    ck_assert (cJSON_IsObject (mdp_msg_data (msg)));
    char *json = mdp_msg_to_json (msg);
    ck_assert_str_eq (json, "{\"action\":\"device.get\",\"data\":{}}");
    free (json);
    mdp_msg_destroy (&msg);
}
END_TEST

START_TEST (test_new_rejects_empty_action)
{
    errno = 0;
    ck_assert_ptr_null (mdp_msg_new (NULL, NULL));
    ck_assert_int_eq (errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null (mdp_msg_new ("", cJSON_CreateObject ())); //  data freed
    ck_assert_int_eq (errno, EINVAL);
}
END_TEST

START_TEST (test_dup_is_deep)
{
    cJSON *data = cJSON_CreateObject ();
    cJSON_AddStringToObject (data, "key", "value");
    mdp_msg_t *msg = mdp_msg_new ("config.get", data);
    mdp_msg_t *copy = mdp_msg_dup (msg);
    ck_assert_ptr_nonnull (copy);
    ck_assert_str_eq (mdp_msg_action (copy), "config.get");
    ck_assert_ptr_ne (mdp_msg_data (copy), mdp_msg_data (msg));
    ck_assert (cJSON_Compare (mdp_msg_data (copy), mdp_msg_data (msg), true));
    mdp_msg_destroy (&msg);
    ck_assert_str_eq (cJSON_GetObjectItem (mdp_msg_data (copy), "key")->valuestring, "value");
    mdp_msg_destroy (&copy);
    ck_assert_ptr_null (mdp_msg_dup (NULL));
}
END_TEST

START_TEST (test_encode_frames)
{
    cJSON *data = cJSON_Parse ("{ \"key\" : 1 }");
    mdp_msg_t *msg = mdp_msg_new ("config.get", data);
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "before"); //  encode appends
    ck_assert_int_eq (mdp_msg_encode (msg, body), 0);
    ck_assert_int_eq (zmsg_size (body), 3);
    ck_assert (zframe_streq (zmsg_first (body), "before"));
    ck_assert (zframe_streq (zmsg_next (body), "config.get"));
    ck_assert (zframe_streq (zmsg_next (body), "{\"key\":1}")); //  unformatted
    zmsg_destroy (&body);
    mdp_msg_destroy (&msg);
}
END_TEST

START_TEST (test_round_trip)
{
    cJSON *data = cJSON_Parse ("{\"a\":[1,2,{\"b\":null}],\"s\":\"\\u00e9t\\u00e9\",\"t\":true}");
    mdp_msg_t *msg = mdp_msg_new ("plugin.start.do", data);
    zmsg_t *body = zmsg_new ();
    ck_assert_int_eq (mdp_msg_encode (msg, body), 0);
    mdp_msg_t *decoded = mdp_msg_decode (body);
    ck_assert_ptr_nonnull (decoded);
    ck_assert_str_eq (mdp_msg_action (decoded), "plugin.start.do");
    ck_assert (cJSON_Compare (mdp_msg_data (decoded), mdp_msg_data (msg), true));
    ck_assert_int_eq (zmsg_size (body), 2); //  decode leaves msg alone
    zmsg_destroy (&body);
    mdp_msg_destroy (&decoded);
    mdp_msg_destroy (&msg);
}
END_TEST

START_TEST (test_decode_action_only)
{
    zmsg_t *body = s_body (1, "200", (size_t)3);
    mdp_msg_t *msg = mdp_msg_decode (body);
    ck_assert_ptr_nonnull (msg);
    ck_assert_str_eq (mdp_msg_action (msg), "200");
    ck_assert (cJSON_IsObject (mdp_msg_data (msg)));
    ck_assert_ptr_null (mdp_msg_data (msg)->child);
    mdp_msg_destroy (&msg);
    zmsg_destroy (&body);
}
END_TEST

START_TEST (test_decode_non_object_data)
{
    const char *values[] = {"[1,2]", "\"text\"", "42", "null", "true"};
    for (size_t index = 0; index < sizeof values / sizeof values[0]; index++) {
        zmsg_t *body = s_body (2, "x.get", (size_t)5, values[index], strlen (values[index]));
        mdp_msg_t *msg = mdp_msg_decode (body);
        ck_assert_msg (msg != NULL, "refused %s", values[index]);
        char *json = cJSON_PrintUnformatted (mdp_msg_data (msg));
        ck_assert_str_eq (json, values[index]);
        cJSON_free (json);
        mdp_msg_destroy (&msg);
        zmsg_destroy (&body);
    }
}
END_TEST

START_TEST (test_decode_refuses_bad_frame_counts)
{
    s_assert_refused (zmsg_new ());
    s_assert_refused (s_body (3, "a", (size_t)1, "{}", (size_t)2, "{}", (size_t)2));
    ck_assert_ptr_null (mdp_msg_decode (NULL));
}
END_TEST

START_TEST (test_decode_refuses_bad_frames)
{
    s_assert_refused (s_body (1, "", (size_t)0)); //  empty action
    s_assert_refused (s_body (2, "", (size_t)0, "{}", (size_t)2));
    s_assert_refused (s_body (2, "con\0fig", (size_t)7, "{}", (size_t)2)); //  NUL in action
    s_assert_refused (s_body (2, "a", (size_t)1, "", (size_t)0));          //  empty JSON
    s_assert_refused (s_body (2, "a", (size_t)1, "{\"k\":", (size_t)5));   //  truncated
    s_assert_refused (s_body (2, "a", (size_t)1, "{} {}", (size_t)5));     //  trailing bytes
    s_assert_refused (s_body (2, "a", (size_t)1, "None", (size_t)4));
    s_assert_refused (s_body (2, "a", (size_t)1, "{}\0xx", (size_t)5)); //  NUL in JSON
}
END_TEST

START_TEST (test_decode_frames_are_not_nul_terminated)
{
    //  The JSON frame is exactly "[1]" with no terminator after it: a decoder
    //  that reads a C string off the end would see garbage or overrun.
    zmsg_t *body = zmsg_new ();
    zmsg_addmem (body, "ab", 2);
    zmsg_addmem (body, "[1]XYZ", 3);
    mdp_msg_t *msg = mdp_msg_decode (body);
    ck_assert_ptr_nonnull (msg);
    ck_assert_str_eq (mdp_msg_action (msg), "ab");
    ck_assert_int_eq (cJSON_GetArraySize (mdp_msg_data (msg)), 1);
    mdp_msg_destroy (&msg);
    zmsg_destroy (&body);
}
END_TEST

//  mdp_msg_decode_parts (the worker engine's path, on zmq_msg_t frames)
//  accepts and refuses exactly what mdp_msg_decode does.
START_TEST (test_decode_parts_agrees_with_decode)
{
    static const struct {
        size_t frames;
        const char *action;
        size_t action_size;
        const char *json;
        size_t json_size;
    } cases[] = {
        {2, "a.get", 5, "{\"n\":12345678901234567890}", 26},
        {1, "a.get", 5, NULL, 0},
        {2, "a.get", 5, "[1,2.50]", 8},
        {2, "", 0, "{}", 2},                  //  empty action
        {2, "a\0b", 3, "{}", 2},              //  NUL in the action
        {2, "a.get", 5, "", 0},               //  empty JSON frame
        {2, "a.get", 5, "{} {}", 5},          //  two values
        {2, "a.get", 5, "{\"a\":\"\0\"}", 9}, //  NUL in the JSON
        {0, NULL, 0, NULL, 0},                //  no frames
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        zmsg_t *msg = zmsg_new ();
        zmq_msg_t parts[2];
        for (size_t frame = 0; frame < cases[index].frames; frame++) {
            const char *data = frame ? cases[index].json : cases[index].action;
            size_t size = frame ? cases[index].json_size : cases[index].action_size;
            zmsg_addmem (msg, data, size);
            zmq_msg_init_size (&parts[frame], size);
            memcpy (zmq_msg_data (&parts[frame]), data, size);
        }
        errno = 0;
        mdp_msg_t *expected = mdp_msg_decode (msg);
        int expected_errno = errno;
        errno = 0;
        mdp_msg_t *decoded = mdp_msg_decode_parts (parts, cases[index].frames);
        ck_assert_msg ((expected == NULL) == (decoded == NULL), "case %zu", index);
        if (expected) {
            ck_assert_str_eq (mdp_msg_action (decoded), mdp_msg_action (expected));
            char *want = mdp_msg_to_json (expected);
            char *got = mdp_msg_to_json (decoded);
            ck_assert_str_eq (got, want);
            cJSON_free (want);
            cJSON_free (got);
        } else
            ck_assert_int_eq (errno, expected_errno);
        mdp_msg_destroy (&expected);
        mdp_msg_destroy (&decoded);
        for (size_t frame = 0; frame < cases[index].frames; frame++)
            zmq_msg_close (&parts[frame]);
        zmsg_destroy (&msg);
    }
}
END_TEST

START_TEST (test_error_message)
{
    mdp_msg_t *msg = mdp_msg_new_error (404, "no such service");
    ck_assert (mdp_msg_is_error (msg));
    ck_assert_str_eq (mdp_msg_action (msg), MDP_ERROR_ACTION);
    ck_assert_int_eq (mdp_msg_error_code (msg), 404);
    char *json = mdp_msg_to_json (msg);
    ck_assert_str_eq (
        json, "{\"action\":\"mdp.error\",\"data\":{\"code\":404,\"reason\":\"no such service\"}}");
    free (json);
    mdp_msg_destroy (&msg);

    //  An error without a code, as a peer may send it
    zmsg_t *body = s_body (2, "mdp.error", (size_t)9, "{\"reason\":\"x\"}", (size_t)14);
    msg = mdp_msg_decode (body);
    ck_assert (mdp_msg_is_error (msg));
    ck_assert_int_eq (mdp_msg_error_code (msg), 0);
    mdp_msg_destroy (&msg);
    zmsg_destroy (&body);
}
END_TEST

START_TEST (test_to_json_escapes)
{
    mdp_msg_t *msg = mdp_msg_new ("say \"hi\"", cJSON_CreateString ("a\nb"));
    char *json = mdp_msg_to_json (msg);
    ck_assert_str_eq (json, "{\"action\":\"say \\\"hi\\\"\",\"data\":\"a\\nb\"}");
    cJSON *parsed = cJSON_Parse (json);
    ck_assert_str_eq (cJSON_GetObjectItem (parsed, "action")->valuestring, "say \"hi\"");
    cJSON_Delete (parsed);
    free (json);
    mdp_msg_destroy (&msg);
}
END_TEST

//  Numbers of any size pass the codec as written, and so does to_json.
START_TEST (test_numbers_pass_through)
{
    zmsg_t *body = s_body (2, "x.get", (size_t)5, TU_NUMBERS_IN, strlen (TU_NUMBERS_IN));
    mdp_msg_t *msg = mdp_msg_decode (body);
    zmsg_destroy (&body);
    ck_assert_ptr_nonnull (msg);
    zmsg_t *again = zmsg_new ();
    ck_assert_int_eq (mdp_msg_encode (msg, again), 0);
    tu_assert_frames (again, 2, "x.get", TU_NUMBERS);
    zmsg_destroy (&again);
    char *json = mdp_msg_to_json (msg);
    ck_assert_str_eq (json, "{\"action\":\"x.get\",\"data\":" TU_NUMBERS "}");
    free (json);
    mdp_msg_t *copy = mdp_msg_dup (msg);
    mdp_msg_destroy (&msg);
    json = mdp_msg_to_json (copy);
    ck_assert_str_eq (json, "{\"action\":\"x.get\",\"data\":" TU_NUMBERS "}");
    free (json);
    mdp_msg_destroy (&copy);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_msg");
    TCase *tc = tcase_create ("msg");
    tcase_add_test (tc, test_new_and_accessors);
    tcase_add_test (tc, test_new_null_data_is_empty_object);
    tcase_add_test (tc, test_new_rejects_empty_action);
    tcase_add_test (tc, test_dup_is_deep);
    tcase_add_test (tc, test_encode_frames);
    tcase_add_test (tc, test_round_trip);
    tcase_add_test (tc, test_decode_action_only);
    tcase_add_test (tc, test_decode_non_object_data);
    tcase_add_test (tc, test_decode_refuses_bad_frame_counts);
    tcase_add_test (tc, test_decode_refuses_bad_frames);
    tcase_add_test (tc, test_decode_frames_are_not_nul_terminated);
    tcase_add_test (tc, test_decode_parts_agrees_with_decode);
    tcase_add_test (tc, test_error_message);
    tcase_add_test (tc, test_to_json_escapes);
    tcase_add_test (tc, test_numbers_pass_through);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
