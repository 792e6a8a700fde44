//! Integration tests: one binary, a file per URL area.

#[path = "../common/mod.rs"]
mod common;

mod abonnement;
mod achats;
mod admin;
mod admin_organisations;
mod admin_qualite;
mod admin_tarifs;
mod aide;
mod api_reseau;
mod cache;
mod compte;
mod contact;
mod credits;
mod entete;
mod foundation;
mod fuzz;
mod generations;
mod guides;
mod inscription;
mod openapi;
mod paiements;
mod panne;
mod portees;
mod renouvellement;
mod securite;
mod simulateur;
mod tableau;
