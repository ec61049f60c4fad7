/*  test_json.c - Check suite for mdp_json: numbers pass through parse and
    print as written (any size, -0.0, 1e308), a changed number prints its new
    value, copies and deletes keep the text without leaks, and what RFC 8259
    refuses is refused with EINVAL.
*/
#include "mdp.h"
#include "testutil.h"
#include <check.h>
#include <errno.h>

//  Parse text (no NUL given to the parser) and print it back.
static char *s_round_trip (const char *text)
{
    cJSON *item = mdp_json_parse (text, strlen (text));
    ck_assert_msg (item != NULL, "refused: %s", text);
    char *printed = mdp_json_print (item);
    cJSON_Delete (item);
    ck_assert_ptr_nonnull (printed);
    return printed;
}

static void s_assert_round_trip (const char *text, const char *expected)
{
    char *printed = s_round_trip (text);
    ck_assert_str_eq (printed, expected);
    free (printed);
}

static void s_assert_refused (const char *text, size_t size)
{
    errno = 0;
    cJSON *item = mdp_json_parse (text, size);
    ck_assert_msg (item == NULL, "accepted: %.*s", (int)size, text);
    ck_assert_int_eq (errno, EINVAL);
}

START_TEST (test_numbers_pass_through)
{
    s_assert_round_trip (TU_NUMBERS_IN, TU_NUMBERS);
    s_assert_round_trip (TU_NUMBERS, TU_NUMBERS);
    s_assert_round_trip ("1E+2", "1E+2");
    s_assert_round_trip ("-0", "-0");
    s_assert_round_trip ("1e400", "1e400"); //  beyond a double: still its text
    s_assert_round_trip (" 3.14159265358979323846264338327950288 ",
                         "3.14159265358979323846264338327950288");
    char digits[302] = "";
    memset (digits, '9', 300); //  longer than cJSON's 63-character number buffer
    char *printed = s_round_trip (digits);
    ck_assert_str_eq (printed, digits);
    free (printed);
}
END_TEST

START_TEST (test_numbers_read_as_doubles)
{
    cJSON *item = mdp_json_parse (TU_NUMBERS, strlen (TU_NUMBERS));
    cJSON *n = cJSON_GetObjectItemCaseSensitive (item, "n");
    ck_assert (cJSON_IsNumber (cJSON_GetArrayItem (n, 2)));
    ck_assert_double_eq (cJSON_GetArrayItem (n, 2)->valuedouble, 0.1);
    ck_assert_int_eq (cJSON_GetArrayItem (n, 0)->valueint, INT_MAX); //  as cJSON saturates
    cJSON_Delete (item);
    item = mdp_json_parse ("{\"code\": 404}", 13);
    ck_assert_int_eq (cJSON_GetObjectItem (item, "code")->valueint, 404);
    cJSON_Delete (item);
}
END_TEST

START_TEST (test_changed_number_prints_new_value)
{
    cJSON *item = mdp_json_parse ("[12345678901234567890, 1.50, 7]", 31);
    cJSON_SetNumberValue (cJSON_GetArrayItem (item, 0), 2);
    cJSON_SetNumberValue (cJSON_GetArrayItem (item, 2), 8);
    cJSON_AddItemToArray (item, cJSON_CreateNumber (0.5));
    char *printed = mdp_json_print (item);
    ck_assert_str_eq (printed, "[2,1.50,8,0.5]");
    free (printed);
    cJSON_Delete (item);
}
END_TEST

START_TEST (test_duplicate_keeps_text)
{
    cJSON *item = mdp_json_parse (TU_NUMBERS, strlen (TU_NUMBERS));
    cJSON *copy = cJSON_Duplicate (item, 1);
    cJSON_Delete (item); //  the copy owns its own texts (ASan/valgrind check it)
    char *printed = mdp_json_print (copy);
    ck_assert_str_eq (printed, TU_NUMBERS);
    free (printed);
    printed = mdp_json_print (cJSON_GetArrayItem (cJSON_GetObjectItem (copy, "n"), 1));
    ck_assert_str_eq (printed, "12345678901234567890");
    free (printed);
    cJSON_Delete (copy);
}
END_TEST

START_TEST (test_strings_and_structure)
{
    s_assert_round_trip ("{\"a\" : [ true , false , null , \"x\\u00e9\\ud83d\\ude00\\n\\\"\" ] , "
                         "\"b\" : {} , \"c\" : [ ] , \"a\" : \"\"}",
                         "{\"a\":[true,false,null,\"x\xc3\xa9\xf0\x9f\x98\x80\\n\\\"\"],"
                         "\"b\":{},\"c\":[],\"a\":\"\"}");
    s_assert_round_trip ("\"\\/\"", "\"/\"");
    cJSON *item = mdp_json_parse ("{\"k\":\"v\"}", 9);
    ck_assert_str_eq (cJSON_GetObjectItem (item, "k")->valuestring, "v");
    cJSON_Delete (item);
}
END_TEST

START_TEST (test_refuses_what_rfc_8259_refuses)
{
    const char *bad[] = {"",
                         "  ",
                         "01",
                         "+1",
                         "1.",
                         ".5",
                         "-",
                         "1e",
                         "1e+",
                         "0x10",
                         "NaN",
                         "Infinity",
                         "[1,]",
                         "[1 2]",
                         "{\"a\"}",
                         "{a:1}",
                         "{\"a\":1,}",
                         "'x'",
                         "tru",
                         "nul",
                         "[",
                         "{}}",
                         "1 2",
                         "\"\\x41\"",
                         "\"\\u12\"",
                         "\"\\ud800\"",
                         "\"\\udc00\"",
                         "\"\\u0000\"",
                         "\"\x01\"",
                         "\"\xc3\"",
                         "\"\xc0\xaf\"",
                         "\"\xed\xa0\x80\"",
                         "\"abc",
                         "[1]\f"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++)
        s_assert_refused (bad[index], strlen (bad[index]));
    s_assert_refused ("[1]\0", 4); //  a NUL byte is no JSON whitespace
    s_assert_refused ("\"a\0b\"", 5);
    s_assert_refused (NULL, 0);
    char deep[2 * 1100 + 1];
    memset (deep, '[', 1100);
    memset (deep + 1100, ']', 1100);
    s_assert_refused (deep, 2200); //  nesting beyond CJSON_NESTING_LIMIT
    s_assert_round_trip ("[[[[1]]]]", "[[[[1]]]]");
}
END_TEST

START_TEST (test_parse_reads_only_size_bytes)
{
    const char text[] = "[1.0]garbage";
    char *printed = NULL;
    cJSON *item = mdp_json_parse (text, 5);
    ck_assert_ptr_nonnull (item);
    printed = mdp_json_print (item);
    ck_assert_str_eq (printed, "[1.0]");
    free (printed);
    cJSON_Delete (item);
    errno = 0;
    ck_assert_ptr_null (mdp_json_print (NULL));
    ck_assert_int_eq (errno, EINVAL);
}
END_TEST

int main (void)
{
    Suite *suite = suite_create ("mdp_json");
    TCase *tc = tcase_create ("json");
    tcase_add_test (tc, test_numbers_pass_through);
    tcase_add_test (tc, test_numbers_read_as_doubles);
    tcase_add_test (tc, test_changed_number_prints_new_value);
    tcase_add_test (tc, test_duplicate_keeps_text);
    tcase_add_test (tc, test_strings_and_structure);
    tcase_add_test (tc, test_refuses_what_rfc_8259_refuses);
    tcase_add_test (tc, test_parse_reads_only_size_bytes);
    suite_add_tcase (suite, tc);
    return tu_run_suite (suite);
}
