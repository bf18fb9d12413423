/* Stub of the Crazyflie firmware's stabilizer_types.h: only the members the robolearn
 * controller uses, with the firmware's names, so the template compiles in CI without
 * the firmware. (The real header uses anonymous unions; member names are the same.) */
#ifndef STUB_STABILIZER_TYPES_H
#define STUB_STABILIZER_TYPES_H

#include <stdint.h>

#define RATE_1000_HZ 1000
#define RATE_500_HZ 500
#define RATE_250_HZ 250
#define RATE_100_HZ 100
#define RATE_MAIN_LOOP RATE_1000_HZ
#define RATE_DO_EXECUTE(RATE_HZ, TICK) (((TICK) % (RATE_MAIN_LOOP / (RATE_HZ))) == 0)

typedef enum { modeDisable = 0, modeAbs, modeVelocity } stab_mode_t;
typedef enum { controlModeLegacy = 0, controlModeForceTorque, controlModeForce } control_mode_t;

typedef struct { float x, y, z; } Axis3f;
typedef struct { uint32_t timestamp; float x, y, z; } vec3_t;
typedef vec3_t point_t;
typedef vec3_t velocity_t;
typedef struct { uint32_t timestamp; float x, y, z, w; } quaternion_t;
typedef struct { uint32_t timestamp; float roll, pitch, yaw; } attitude_t;

typedef struct {
    attitude_t attitude;
    quaternion_t attitudeQuaternion;
    point_t position;
    velocity_t velocity;
} state_t;

typedef struct {
    Axis3f acc;  /* g */
    Axis3f gyro; /* deg/s, body frame */
} sensorData_t;

typedef struct {
    stab_mode_t x, y, z, roll, pitch, yaw, quat;
} setpoint_mode_t;

typedef struct {
    uint32_t timestamp;
    point_t position;
    velocity_t velocity;
    setpoint_mode_t mode;
} setpoint_t;

typedef struct {
    control_mode_t controlMode;
    float normalizedForces[4]; /* 0..1 of full thrust, per motor M1..M4 */
} control_t;

#endif
