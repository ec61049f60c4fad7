/*  fuzz_broker.c - libFuzzer target: arbitrary sequences of multi-frame
    messages from a handful of peers, fed straight into the broker engine
    (broker_handle), with the clock jumped forward now and then so expiry,
    heartbeats and deadlines run too. A fresh broker per input.

    Input: a list of records. Record byte b: if b & 0x80, tick at now +
    (b & 0x7f) seconds; else a message of (b % 12) + 1 frames from peer
    (b >> 4) & 7, each frame a length byte (% 64) and that many bytes.
*/
#include "broker.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static int instance = 0;
    static bool quiet = false;
    if (!quiet) {
        zsys_init ();
        zsys_set_logstream (NULL); //  dropped-message warnings would drown the output
        zsys_set_logsystem (false);
        quiet = true;
    }
    broker_config_t cfg;
    broker_config_defaults (&cfg);
    cfg.max_queue = 4;
    broker_t *broker = broker_new (&cfg);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://fuzz-%d", instance++);
    broker_bind (broker, endpoint);
    int64_t now = zclock_mono ();
    size_t pos = 0;
    while (pos < size) {
        uint8_t head = data[pos++];
        if (head & 0x80) {
            now += (head & 0x7f) * 1000;
            broker_tick (broker, now);
            continue;
        }
        size_t count = (size_t)(head % 12) + 1;
        zmq_msg_t frames[13];
        char peer[8] = {'p', 'e', 'e', 'r', (char)('0' + ((head >> 4) & 7)), 0};
        zmq_msg_init_size (&frames[0], 5);
        memcpy (zmq_msg_data (&frames[0]), peer, 5);
        size_t n = 1;
        for (; n <= count && pos < size; n++) {
            size_t len = data[pos++] % 64;
            if (len > size - pos)
                len = size - pos;
            zmq_msg_init_size (&frames[n], len);
            memcpy (zmq_msg_data (&frames[n]), data + pos, len);
            pos += len;
        }
        broker_handle (broker, frames, n);
    }
    broker_tick (broker, now + 3600 * 1000);
    broker_destroy (&broker);
    return 0;
}
