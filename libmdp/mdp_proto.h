/*  mdp_proto.h - wire constants of MDP/0.1 (RFC 7) and MDP/0.2 (RFC 18),
    and the one table of worker commands by version that the worker engine,
    the AMQP bridge (through the engine) and the broker share. Private to
    libmdp, the broker and the bridge; spec/mdp.md is the prose for all of it.
*/
#ifndef MDP_PROTO_H_INCLUDED
#define MDP_PROTO_H_INCLUDED

#define MDPC01 "MDPC01" //  client protocol, MDP/0.1
#define MDPW01 "MDPW01" //  worker protocol, MDP/0.1
#define MDPC02 "MDPC02" //  client protocol, MDP/0.2
#define MDPW02 "MDPW02" //  worker protocol, MDP/0.2
#define MDP_PROTO_LEN 6 //  every protocol frame is six bytes

//  MDP/0.1 worker commands (one-byte frames)
#define MDPW01_READY 0x01
#define MDPW01_REQUEST 0x02
#define MDPW01_REPLY 0x03
#define MDPW01_HEARTBEAT 0x04
#define MDPW01_DISCONNECT 0x05

//  MDP/0.2 client commands
#define MDPC02_REQUEST 0x01
#define MDPC02_PARTIAL 0x02
#define MDPC02_FINAL 0x03

//  MDP/0.2 worker commands
#define MDPW02_READY 0x01
#define MDPW02_REQUEST 0x02
#define MDPW02_PARTIAL 0x03
#define MDPW02_FINAL 0x04
#define MDPW02_HEARTBEAT 0x05
#define MDPW02_DISCONNECT 0x06

//  The worker commands of both versions by meaning; mdp_proto_code gives each
//  one's byte in a version, mdp_proto_command the meaning of a byte.
typedef enum {
    MDP_PROTO_READY,
    MDP_PROTO_REQUEST,
    MDP_PROTO_PARTIAL, //  MDPW02 only
    MDP_PROTO_FINAL,   //  REPLY in MDPW01
    MDP_PROTO_HEARTBEAT,
    MDP_PROTO_DISCONNECT,
    MDP_PROTO_COMMANDS //  how many there are
} mdp_proto_cmd_t;

//  Command bytes by [version - 1][meaning]; 0 where a version has none.
static const unsigned char mdp_proto_codes[2][MDP_PROTO_COMMANDS] = {
    {MDPW01_READY, MDPW01_REQUEST, 0, MDPW01_REPLY, MDPW01_HEARTBEAT, MDPW01_DISCONNECT},
    {MDPW02_READY, MDPW02_REQUEST, MDPW02_PARTIAL, MDPW02_FINAL, MDPW02_HEARTBEAT,
     MDPW02_DISCONNECT}};

//  The worker protocol frame of a version (1 or 2): "MDPW01" or "MDPW02".
static inline const char *mdp_proto_worker (int version)
{
    return version == 2 ? MDPW02 : MDPW01;
}

//  The byte of command in version (1 or 2), 0 if that version has none.
static inline unsigned char mdp_proto_code (int version, mdp_proto_cmd_t command)
{
    return mdp_proto_codes[version == 2][command];
}

//  Meanings by [version - 1][command byte]; -1 where a byte means nothing.
static const signed char mdp_proto_meanings[2][8] = {
    {-1, MDP_PROTO_READY, MDP_PROTO_REQUEST, MDP_PROTO_FINAL, MDP_PROTO_HEARTBEAT,
     MDP_PROTO_DISCONNECT, -1, -1},
    {-1, MDP_PROTO_READY, MDP_PROTO_REQUEST, MDP_PROTO_PARTIAL, MDP_PROTO_FINAL,
     MDP_PROTO_HEARTBEAT, MDP_PROTO_DISCONNECT, -1}};

//  The meaning of command byte code in version, or -1 if it has none (one
//  table lookup: the broker calls it for every worker message).
static inline int mdp_proto_command (int version, int code)
{
    return code >= 0 && code < 8 ? mdp_proto_meanings[version == 2][code] : -1;
}

#define MDP_ERROR_ACTION_WIRE "mdp.error" //  action of every error reply
#define MDP_MMI_PREFIX "mmi."
#define MDP_MAX_SERVICE_NAME 255 //  longer service names are malformed

#endif
