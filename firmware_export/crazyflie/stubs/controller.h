/* Stub of the Crazyflie firmware's controller.h: the out-of-tree controller hooks. */
#ifndef STUB_CONTROLLER_H
#define STUB_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "stabilizer_types.h"

void controllerOutOfTreeInit(void);
bool controllerOutOfTreeTest(void);
void controllerOutOfTree(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors,
                         const state_t *state, const uint32_t tick);

#endif
