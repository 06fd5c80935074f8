//! OOM notifications: memory.oom_control eventfd on v1, memory.events on v2.
