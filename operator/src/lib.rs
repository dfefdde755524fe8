//! Flotilla: the Microservice operator.
