//! A node's desired set: the objects the hub sends it.
