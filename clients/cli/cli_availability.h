/*
 * cli_availability — what `kubemedic availability` prints of an
 * Availability (HealthService.GetAvailability) for people: uptime,
 * observed and down time, incidents (open), MTTR, MTBF, uptime step by
 * step as a sparkline, and the recovery actions' fix rates. Argument
 * parsing and -o json stay with the other commands in kubemedic.c.
 *
 * Whatever the server sent is printed through km_text_safe. Nothing here
 * keeps state; strings go to the arena given.
 */
#ifndef KM_CLI_AVAILABILITY_H
#define KM_CLI_AVAILABILITY_H

#include <stdint.h>
#include <stdio.h>

#include "km_arena.h"
#include "kubemedic/v1/health.pb-c.h"

/* Steps the command asks for when --step is not given. */
#define KM_CLI_AVAILABILITY_STEPS 60

/* The step, in whole seconds (at least 1), that cuts a window of
 * window_us into KM_CLI_AVAILABILITY_STEPS steps (the last may be
 * shorter). */
int64_t km_cli_availability_step(int64_t window_us);

/* Prints a as a few lines and a table to out. subject says what was
 * asked: a target's name, or a selection in words ("-l team=shop"), then
 * printed with the number of targets it matched. */
void km_cli_availability_print(FILE *out, const Kubemedic__V1__Availability *a,
			       const char *subject, struct km_arena *ar);

#endif
