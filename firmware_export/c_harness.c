/* Host test harness for the generated policy (not for the microcontroller).
 *
 * usage: harness OBS_FILE ACTION_FILE
 *   OBS_FILE:    N * ROBOLEARN_OBS_DIM float32 values (native byte order)
 *   ACTION_FILE: written with N * ROBOLEARN_ACT_DIM float32 values
 * stdout: "sha256 <hex>" then "rpm <motor> <rpm(-1)> <rpm(0)> <rpm(1)>" per motor, then "n <N>".
 */
#include <stdio.h>

#include "policy.h"

int main(int argc, char **argv)
{
    float obs[ROBOLEARN_OBS_DIM];
    float act[ROBOLEARN_ACT_DIM];
    FILE *in;
    FILE *out;
    long n = 0;
    int k;

    if (argc != 3) {
        fprintf(stderr, "usage: %s OBS_FILE ACTION_FILE\n", argv[0]);
        return 2;
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
    robolearn_policy_reset();
    while (fread(obs, sizeof obs[0], ROBOLEARN_OBS_DIM, in) == ROBOLEARN_OBS_DIM) {
        robolearn_policy(obs, act);
        if (fwrite(act, sizeof act[0], ROBOLEARN_ACT_DIM, out) != ROBOLEARN_ACT_DIM) {
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
