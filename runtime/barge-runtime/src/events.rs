//! `events`: a container's OOM notifications and usage statistics as runc prints them.
