/* robolearn_obs.c - observation assembly shared by the Crazyflie controller and its tests. */
#include "robolearn_obs.h"

void robolearn_obs_assemble(float *obs, const float pos_err[3], const float quat_wxyz[4],
                            const float vel_world[3], const float rates_body[3],
                            const float *history, int history_len)
{
    const float w = quat_wxyz[0], x = quat_wxyz[1], y = quat_wxyz[2], z = quat_wxyz[3];
    int i;

    for (i = 0; i < 3; ++i) {
        obs[i] = pos_err[i];
    }
    /* Rotation matrix of a unit quaternion, body -> world (same formula as
     * sims/quadrotor/physics.py: observe). */
    obs[3] = 1.0f - 2.0f * (y * y + z * z);
    obs[4] = 2.0f * (x * y - w * z);
    obs[5] = 2.0f * (x * z + w * y);
    obs[6] = 2.0f * (x * y + w * z);
    obs[7] = 1.0f - 2.0f * (x * x + z * z);
    obs[8] = 2.0f * (y * z - w * x);
    obs[9] = 2.0f * (x * z - w * y);
    obs[10] = 2.0f * (y * z + w * x);
    obs[11] = 1.0f - 2.0f * (x * x + y * y);
    for (i = 0; i < 3; ++i) {
        obs[12 + i] = vel_world[i];
        obs[15 + i] = rates_body[i];
    }
    for (i = 0; i < ROBOLEARN_MOTORS * history_len; ++i) {
        obs[ROBOLEARN_OBS_BASE_DIM + i] = history[i];
    }
}

void robolearn_history_push(float *history, int history_len, const float action[ROBOLEARN_MOTORS])
{
    int i, k;

    for (i = ROBOLEARN_MOTORS * history_len - 1; i >= ROBOLEARN_MOTORS; --i) {
        history[i] = history[i - ROBOLEARN_MOTORS];
    }
    if (history_len > 0) {
        for (k = 0; k < ROBOLEARN_MOTORS; ++k) {
            float a = action[k];
            history[k] = a < -1.0f ? -1.0f : (a > 1.0f ? 1.0f : a);
        }
    }
}

void robolearn_history_fill(float *history, int history_len, float value)
{
    int i;

    for (i = 0; i < ROBOLEARN_MOTORS * history_len; ++i) {
        history[i] = value;
    }
}
