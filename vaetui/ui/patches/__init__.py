"""Every override of Textual's internals, in one place: what the terminal is sent (wire), what is rendered
(occlusion). Each says which Textual behaviour it changes and why."""
