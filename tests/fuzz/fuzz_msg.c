/*  fuzz_msg.c - libFuzzer target for the message decoder: the input is cut
    into frames at each 0xFF byte and decoded as a Domogik body; whatever
    decodes must encode, decode again and render to JSON without harm, and
    its JSON text must come back byte for byte the second time (mdp_json).
    The whole input goes through mdp_json_parse and mdp_json_print as well.
*/
#include "mdp.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zmsg_t *body = zmsg_new ();
    size_t start = 0;
    for (size_t i = 0; i <= size; i++)
        if (i == size || data[i] == 0xFF) {
            zmsg_addmem (body, data + start, i - start);
            start = i + 1;
        }
    mdp_msg_t *msg = mdp_msg_decode (body);
    if (msg) {
        zmsg_t *again = zmsg_new ();
        if (mdp_msg_encode (msg, again) == 0) {
            mdp_msg_t *copy = mdp_msg_decode (again);
            if (!copy || strcmp (mdp_msg_action (copy), mdp_msg_action (msg)) != 0)
                __builtin_trap (); //  what decodes must survive a round trip
            zmsg_t *third = zmsg_new ();
            if (mdp_msg_encode (copy, third) == 0 &&
                !zframe_eq (zmsg_last (again), zmsg_last (third)))
                __builtin_trap (); //  printed JSON is a fixed point
            zmsg_destroy (&third);
            mdp_msg_destroy (&copy);
        }
        zmsg_destroy (&again);
        char *json = mdp_msg_to_json (msg);
        free (json);
        mdp_msg_destroy (&msg);
    }
    zmsg_destroy (&body);
    cJSON *item = mdp_json_parse ((const char *)data, size);
    char *text = item ? mdp_json_print (item) : NULL;
    cJSON *again = text ? mdp_json_parse (text, strlen (text)) : NULL;
    char *text2 = again ? mdp_json_print (again) : NULL;
    if (item && (!text2 || strcmp (text, text2) != 0))
        __builtin_trap (); //  what parses prints, and prints the same again
    free (text);
    free (text2);
    cJSON_Delete (again);
    cJSON_Delete (item);
    return 0;
}
