"""Policies written by others, flown through :class:`robolearn.controllers.Controller` in our benchmarks."""
