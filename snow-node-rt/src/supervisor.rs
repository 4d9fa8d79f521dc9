//! Supervisors (coming next).
