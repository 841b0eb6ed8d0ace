"""Small helpers shared across the library: image arrays (`image_utils`) and image grids (`visualize`)."""
