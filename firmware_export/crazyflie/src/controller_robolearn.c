/* controller_robolearn.c - Crazyflie 2.x out-of-tree controller running a robolearn policy.
 *
 * Build: copy this folder next to the exported policy.c/policy.h (robolearn export
 * RUN_DIR --format c) and follow firmware_export/README.md ("Crazyflie out-of-tree
 * controller"). Select it at run time with the parameter stabilizer.controller = 5
 * (out of tree).
 *
 * Every stabilizer tick (1 kHz) we keep the last motor command; at the policy's
 * rate (ROBOLEARN_CF_RATE, 100 Hz = the training dt of 0.01 s) we assemble the
 * observation from the state estimate, run robolearn_policy and convert its
 * normalized actions to per-motor normalized forces (controlModeForce).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "controller.h"
#include "stabilizer_types.h"

#include "policy.h"
#include "robolearn_obs.h"

#ifndef ROBOLEARN_CF_RATE
#define ROBOLEARN_CF_RATE RATE_100_HZ /* must match manifest.json control.rate_hz */
#endif

#define CF_HISTORY ((ROBOLEARN_OBS_DIM - ROBOLEARN_OBS_BASE_DIM) / ROBOLEARN_MOTORS)
/* Compile-time checks (C99 has no static_assert): a negative array size fails the build. */
typedef char robolearn_obs_dim_is_quadrotor_view[
    (ROBOLEARN_OBS_DIM - ROBOLEARN_OBS_BASE_DIM) % ROBOLEARN_MOTORS == 0 && CF_HISTORY >= 0 ? 1 : -1];
typedef char robolearn_act_dim_is_four_motors[ROBOLEARN_ACT_DIM == ROBOLEARN_MOTORS ? 1 : -1];

/* Hover action of the nominal model: rpm_h = sqrt(m g / (4 k_f)) (m = 0.027 kg,
 * k_f = 3.16e-10 N/RPM^2, g = 9.81: sims/quadrotor/params.py), normalized as the
 * simulator does. The simulator starts every episode with this in the history. */
#define CF_MASS_KG 0.027f
#define CF_KF_N_PER_RPM2 3.16e-10f
#define CF_GRAVITY 9.81f
#define DEG_TO_RAD 0.017453292519943295f

static float history[ROBOLEARN_MOTORS * (CF_HISTORY > 0 ? CF_HISTORY : 1)];
static float obs[ROBOLEARN_OBS_DIM];
static float action[ROBOLEARN_ACT_DIM];
static float forces[ROBOLEARN_MOTORS];

static float hover_action(void)
{
    float rpm = sqrtf(CF_MASS_KG * CF_GRAVITY / (4.0f * CF_KF_N_PER_RPM2));
    return 2.0f * (rpm - ROBOLEARN_RPM_MIN) / (ROBOLEARN_RPM_MAX - ROBOLEARN_RPM_MIN) - 1.0f;
}

/* A new episode: the policy's internal state (the integrator of a robolearn.actor/2 policy,
 * ROBOLEARN_STATE_DIM floats inside policy.c) back to zero, the action history to hover.
 * Called when the controller starts and on every tick while the setpoint is disabled, so
 * every (re)start flies from a reset exactly like a training episode. */
static void reset_state(void)
{
    int k;

    robolearn_policy_reset();
    robolearn_history_fill(history, CF_HISTORY, hover_action());
    for (k = 0; k < ROBOLEARN_MOTORS; ++k) {
        forces[k] = 0.0f;
    }
}

void controllerOutOfTreeInit(void)
{
    reset_state();
}

bool controllerOutOfTreeTest(void)
{
    return true;
}

void controllerOutOfTree(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors,
                         const state_t *state, const uint32_t tick)
{
    int k;

    control->controlMode = controlModeForce;
    if (setpoint->mode.z == modeDisable) {
        /* Not flying (no setpoint): motors off, start the next flight like an episode. */
        reset_state();
        for (k = 0; k < ROBOLEARN_MOTORS; ++k) {
            control->normalizedForces[k] = 0.0f;
        }
        return;
    }
    if (RATE_DO_EXECUTE(ROBOLEARN_CF_RATE, tick)) {
        const float pos_err[3] = {state->position.x - setpoint->position.x,
                                  state->position.y - setpoint->position.y,
                                  state->position.z - setpoint->position.z};
        /* The estimator's quaternion is stored (x, y, z, w); the policy wants (w, x, y, z). */
        const float quat[4] = {state->attitudeQuaternion.w, state->attitudeQuaternion.x,
                               state->attitudeQuaternion.y, state->attitudeQuaternion.z};
        const float vel[3] = {state->velocity.x, state->velocity.y, state->velocity.z};
        /* The gyro reports deg/s in the body frame (x forward, y left, z up). */
        const float rates[3] = {sensors->gyro.x * DEG_TO_RAD, sensors->gyro.y * DEG_TO_RAD,
                                sensors->gyro.z * DEG_TO_RAD};

        robolearn_obs_assemble(obs, pos_err, quat, vel, rates, history, CF_HISTORY);
        robolearn_policy_step(obs, action); /* integrates first, then acts */
        robolearn_history_push(history, CF_HISTORY, action);
        for (k = 0; k < ROBOLEARN_MOTORS; ++k) {
            /* Thrust is k_f rpm^2, so the fraction of full thrust is (rpm / rpm_max)^2;
             * this assumes the simulator's rpm_max is the motor's full-thrust speed. */
            float r = robolearn_action_to_rpm(k, action[k]) / ROBOLEARN_RPM_MAX;
            forces[k] = r * r;
        }
    }
    /* Action k drives motor M(k+1): front-right, back-right, back-left, front-left. */
    for (k = 0; k < ROBOLEARN_MOTORS; ++k) {
        control->normalizedForces[k] = forces[k];
    }
}
