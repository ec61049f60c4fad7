/*  fuzz_msg.c - libFuzzer target for the message decoder: the input is cut
    into frames at each 0xFF byte and decoded as a Domogik body; whatever
    decodes must encode, decode again and render to JSON without harm.
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
                __builtin_trap ();   //  what decodes must survive a round trip
            mdp_msg_destroy (&copy);
        }
        zmsg_destroy (&again);
        char *json = mdp_msg_to_json (msg);
        free (json);
        mdp_msg_destroy (&msg);
    }
    zmsg_destroy (&body);
    return 0;
}
