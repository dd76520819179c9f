"""The HTTP faces: screens and APIs calling domain services (writes) and selectors (reads); no business rules."""
