/*  mdp_proto.h - wire constants of MDP/0.1 (RFC 7) and MDP/0.2 (RFC 18).
    Private to libmdp and the broker; spec/mdp.md is the prose for all of it.
*/
#ifndef MDP_PROTO_H_INCLUDED
#define MDP_PROTO_H_INCLUDED

#define MDPC01 "MDPC01"         //  client protocol, MDP/0.1
#define MDPW01 "MDPW01"         //  worker protocol, MDP/0.1
#define MDPC02 "MDPC02"         //  client protocol, MDP/0.2
#define MDPW02 "MDPW02"         //  worker protocol, MDP/0.2
#define MDP_PROTO_LEN 6         //  every protocol frame is six bytes

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

#define MDP_ERROR_ACTION_WIRE "mdp.error"   //  action of every error reply
#define MDP_MMI_PREFIX "mmi."
#define MDP_MAX_SERVICE_NAME 255   //  longer service names are malformed

#endif
