/* Host test harness for the generated policy (not for the microcontroller).
 *
 * usage: harness OBS_FILE OUT_FILE [EPISODE_STEPS]
 *   OBS_FILE: N * ROBOLEARN_OBS_DIM float32 values (native byte order), episodes back to back
 *   OUT_FILE: written with, per step, ROBOLEARN_ACT_DIM action floats followed by the
 *             ROBOLEARN_STATE_DIM floats of the state after the step
 *   EPISODE_STEPS: robolearn_policy_reset() before every EPISODE_STEPS-th observation
 *             (default 1: every observation is the first step of an episode)
 * stdout: "sha256 <hex>" then "rpm <motor> <rpm(-1)> <rpm(0)> <rpm(1)>" per motor, then "n <N>".
 */
#include <stdio.h>
#include <stdlib.h>

#include "policy.h"

#define STATE_SLOTS (ROBOLEARN_STATE_DIM > 0 ? ROBOLEARN_STATE_DIM : 1)

int main(int argc, char **argv)
{
    float obs[ROBOLEARN_OBS_DIM];
    float act[ROBOLEARN_ACT_DIM];
    float z[STATE_SLOTS];
    FILE *in;
    FILE *out;
    long n = 0, steps = 1;
    int k;

    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s OBS_FILE OUT_FILE [EPISODE_STEPS]\n", argv[0]);
        return 2;
    }
    if (argc == 4) {
        steps = strtol(argv[3], NULL, 10);
        if (steps < 1) {
            fprintf(stderr, "EPISODE_STEPS must be >= 1\n");
            return 2;
        }
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    printf("sha256 ");
    for (k = 0; k < 32; ++k) {
        printf("%02x", robolearn_manifest_sha256[k]);
    }
    printf("\n");
    for (k = 0; k < ROBOLEARN_ACT_DIM; ++k) {
        printf("rpm %d %.9g %.9g %.9g\n", k, (double)robolearn_action_to_rpm(k, -1.0f),
               (double)robolearn_action_to_rpm(k, 0.0f), (double)robolearn_action_to_rpm(k, 1.0f));
    }
    while (fread(obs, sizeof obs[0], ROBOLEARN_OBS_DIM, in) == ROBOLEARN_OBS_DIM) {
        if (n % steps == 0) {
            robolearn_policy_reset();
        }
        robolearn_policy_step(obs, act);
        robolearn_policy_state(z);
        if (fwrite(act, sizeof act[0], ROBOLEARN_ACT_DIM, out) != ROBOLEARN_ACT_DIM ||
            (ROBOLEARN_STATE_DIM > 0 &&
             fwrite(z, sizeof z[0], (size_t)ROBOLEARN_STATE_DIM, out) != (size_t)ROBOLEARN_STATE_DIM)) {
            fprintf(stderr, "write failed\n");
            return 1;
        }
        ++n;
    }
    fclose(in);
    if (fclose(out) != 0) {
        return 1;
    }
    printf("n %ld\n", n);
    return 0;
}
