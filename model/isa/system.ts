// placeholder: filled by the instruction-group work
