//! Help-centre guides: loading, front matter, rendering, link checking, search.
