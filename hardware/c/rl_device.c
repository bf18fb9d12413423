/* rl_device.c - device main loop: HELLO -> HELLO_ACK, STEP -> robolearn_policy ->
 * ACTION (+ inference cycles), RESET -> RESET_ACK, ERROR on bad frames.
 *
 * Policy state (a stateful policy keeps e.g. an integrator between calls; see
 * robolearn_policy_reset() in policy.h): STEP carries the control step index within the
 * episode. Step 0 starts an episode: robolearn_policy_reset() runs before the policy.
 * A stateful policy (policy.h defines ROBOLEARN_STATE_DIM > 0) must then see steps
 * 1, 2, ... in order: any other index means its state is not the host's (the device
 * rebooted mid-episode, or a STEP went missing), and it answers ERROR 5 without running
 * the policy. A stateless policy accepts any index. RESET also clears the state.
 *
 * Behaviour (hardware/PROTOCOL.md, and the Python device model in
 * hardware/device_model.py which tests/test_hil.py holds it to):
 *  - STEP is ignored until a HELLO has been answered since boot: a device that rebooted
 *    mid-run must not fly on with a host that has not re-checked the manifest.
 *  - A retransmitted request (same type and seq as the last STEP/RESET) is answered
 *    from a cache without running the policy again.
 *  - A rejected frame is answered with ERROR (code 1 for COBS/CRC, 2 for lengths,
 *    seq 0xFFFF) once the handshake is done; before it, silently dropped (boot noise).
 */
#include "rl_device.h"

#include <string.h>

#include "policy.h"
#include "rl_proto.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the protocol's floats are little-endian; this code copies them as they are"
#endif

#if ROBOLEARN_OBS_DIM * 4 + RL_STEP_HEADER_SIZE > RL_MAX_PAYLOAD || ROBOLEARN_ACT_DIM * 4 + 4 > RL_MAX_PAYLOAD
#error "the observation or action does not fit one frame"
#endif

/* Floats of policy state kept between calls; policy.h of a stateful policy defines it. */
#if defined(ROBOLEARN_STATE_DIM)
#define RL_STATE_DIM ROBOLEARN_STATE_DIM
#else
#define RL_STATE_DIM 0
#endif
#define RL_NO_EPISODE 0xFFFFFFFFu /* after boot: no episode in progress */

#define ACTION_SIZE (4u * ROBOLEARN_ACT_DIM + 4u)
#define MAX_REPLY_PAYLOAD (ACTION_SIZE > RL_HELLO_ACK_SIZE ? ACTION_SIZE : RL_HELLO_ACK_SIZE)
#define MAX_REPLY_WIRE (RL_COBS_MAX(RL_MIN_BODY + MAX_REPLY_PAYLOAD) + 1u)

static rl_decoder dec;
static uint8_t ready;           /* HELLO answered since boot */
static uint8_t cache_type;      /* last STEP/RESET answered (0: none) */
static uint16_t cache_seq;
static uint8_t cache[MAX_REPLY_WIRE];
static size_t cache_n;
static uint8_t tx[MAX_REPLY_WIRE];
static float obs[ROBOLEARN_OBS_DIM];
static float act[ROBOLEARN_ACT_DIM];
static uint32_t next_step;      /* step index the policy state is at (RL_NO_EPISODE: none) */

void rl_device_init(void)
{
    rl_decoder_init(&dec);
    ready = 0;
    cache_type = 0;
    cache_n = 0;
    next_step = RL_NO_EPISODE;
}

static size_t reply(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len)
{
    size_t n = rl_frame_pack(type, seq, payload, len, tx, sizeof tx);
    rl_platform_write(tx, n);
    return n;
}

static void send_error(uint8_t code, uint16_t seq)
{
    uint8_t p[3];
    p[0] = code;
    rl_put_u16(p + 1, seq);
    reply(RL_ERROR, seq, p, sizeof p);
}

static void handle(const rl_frame *f)
{
    uint8_t p[MAX_REPLY_PAYLOAD];
    size_t n;
    uint32_t t0, t1, step;

    if ((f->type == RL_STEP || f->type == RL_RESET) && ready && f->type == cache_type &&
        f->seq == cache_seq && cache_n) {
        rl_platform_write(cache, cache_n); /* retransmission: same answer, policy not re-run */
        return;
    }
    switch (f->type) {
    case RL_HELLO:
        ready = 1;
        rl_put_u32(p, RL_VERSION);
        rl_put_u16(p + 4, (uint16_t)ROBOLEARN_OBS_DIM);
        rl_put_u16(p + 6, (uint16_t)ROBOLEARN_ACT_DIM);
        memcpy(p + 8, robolearn_manifest_sha256, 32);
        rl_put_u32(p + 40, rl_platform_cpu_hz());
        rl_put_u16(p + 44, (uint16_t)RL_STATE_DIM);
        reply(RL_HELLO_ACK, f->seq, p, RL_HELLO_ACK_SIZE);
        return;
    case RL_RESET:
        robolearn_policy_reset();
        next_step = 0;
        n = reply(RL_RESET_ACK, f->seq, p, 0);
        break;
    case RL_STEP:
        if (!ready) {
            return;
        }
        if (f->len != RL_STEP_HEADER_SIZE + 4u * ROBOLEARN_OBS_DIM) {
            send_error(RL_ERR_OBS_SIZE, f->seq);
            return;
        }
        step = rl_get_u32(f->payload);
        if (step == 0u) {
            robolearn_policy_reset(); /* episode start */
        } else if (RL_STATE_DIM > 0 && step != next_step) {
            send_error(RL_ERR_STATE, f->seq); /* not cached: the host resynchronizes first */
            return;
        }
        memcpy(obs, f->payload + RL_STEP_HEADER_SIZE, sizeof obs);
        t0 = rl_platform_cycles();
        robolearn_policy(obs, act);
        t1 = rl_platform_cycles();
        next_step = step + 1u;
        memcpy(p, act, sizeof act);
        rl_put_u32(p + sizeof act, t1 - t0); /* wraps correctly modulo 2^32 */
        n = reply(RL_ACTION, f->seq, p, (uint16_t)ACTION_SIZE);
        break;
    default:
        send_error(RL_ERR_TYPE, f->seq);
        return;
    }
    memcpy(cache, tx, n);
    cache_n = n;
    cache_type = f->type;
    cache_seq = f->seq;
}

void rl_device_feed(uint8_t byte)
{
    rl_frame f;
    int r = rl_decoder_push(&dec, byte, &f);
    if (r > 0) {
        handle(&f);
    } else if (r < 0 && ready) {
        send_error(rl_reject_error_code((rl_status)(-r)), RL_SEQ_UNKNOWN);
    }
}

void rl_device_run(void)
{
    int c;
    rl_device_init();
    while ((c = rl_platform_getc()) >= 0) {
        rl_device_feed((uint8_t)c);
    }
}
