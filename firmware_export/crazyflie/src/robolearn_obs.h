/* robolearn_obs.h - assemble the policy observation (layout: manifest.json "observation").
 *
 * Pure C99, no firmware headers, so it is unit-tested on the host against the simulator.
 */
#ifndef ROBOLEARN_OBS_H
#define ROBOLEARN_OBS_H

#define ROBOLEARN_OBS_BASE_DIM 18 /* 3 position error + 9 rotation + 3 velocity + 3 body rates */
#define ROBOLEARN_MOTORS 4

/* obs[0..2]   position - target, m, world frame (z up)
 * obs[3..11]  R(q) body->world, row-major; q = (w, x, y, z) unit Hamilton quaternion
 * obs[12..14] velocity, m/s, world frame
 * obs[15..17] body rates, rad/s, body frame (x forward, y left, z up)
 * obs[18..]   the last history_len actions (4 each, in [-1, 1]), newest first */
void robolearn_obs_assemble(float *obs, const float pos_err[3], const float quat_wxyz[4],
                            const float vel_world[3], const float rates_body[3],
                            const float *history, int history_len);

/* Push a new action (clipped to [-1, 1]) to the front of a newest-first history. */
void robolearn_history_push(float *history, int history_len, const float action[ROBOLEARN_MOTORS]);

/* Fill the history with one value (the hover action at take-off, as the simulator starts). */
void robolearn_history_fill(float *history, int history_len, float value);

#endif /* ROBOLEARN_OBS_H */
