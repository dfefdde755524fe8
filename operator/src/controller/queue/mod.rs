//! What orders the reconciles: one turn per Microservice at a time, and the bounded
//! channel that carries new generations to the edit lane.

pub mod edits;
pub mod turns;
