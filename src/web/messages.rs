//! Short French messages shared by pages and JSON answers. Rust picks the variant; the text lives
//! in `templates/messages/`, and askama's exhaustive `match` makes a variant without its
//! sentence a compile error.

use askama::Template;

use crate::domain::pricing::Refusal;
use crate::domain::prompt::{Advice, Category};
use crate::domain::simulation::FieldError;
use crate::services::passwords::Weakness;
use crate::web::aide::QueryProblem;
use crate::web::api_error::ApiErrorCode;
use crate::web::compte::FormError;
use crate::web::contact::ContactError;

#[derive(Template)]
#[template(path = "messages/field_error.txt")]
struct FieldErrorText<'a> {
    field: &'a str,
    error: &'a FieldError,
}

#[derive(Template)]
#[template(path = "messages/refusal.txt")]
struct RefusalText<'a> {
    refusal: &'a Refusal,
}

#[derive(Template)]
#[template(path = "messages/advice.txt")]
struct AdviceText<'a> {
    advice: &'a Advice,
}

#[derive(Template)]
#[template(path = "messages/category.txt")]
struct CategoryText {
    category: Category,
}

// Rendering these fixed texts cannot fail (no I/O, no fallible filter); the fallback keeps a
// page readable if it ever did.
fn render(template: impl Template) -> String {
    template.render().unwrap_or_else(|_| "Erreur".to_owned())
}

pub fn field_error(field: &str, error: &FieldError) -> String {
    render(FieldErrorText { field, error })
}

pub fn refusal(refusal: &Refusal) -> String {
    render(RefusalText { refusal })
}

pub fn advice(advice: &Advice) -> String {
    render(AdviceText { advice })
}

pub fn category(category: Category) -> String {
    render(CategoryText { category })
}

#[derive(Template)]
#[template(path = "messages/query_problem.txt")]
struct QueryProblemText<'a> {
    problem: &'a QueryProblem,
}

pub fn query_problem(problem: &QueryProblem) -> String {
    render(QueryProblemText { problem })
}

#[derive(Template)]
#[template(path = "messages/contact_error.txt")]
struct ContactErrorText<'a> {
    field: &'a str,
    error: ContactError,
}

pub fn contact_error(field: &str, error: ContactError) -> String {
    render(ContactErrorText { field, error })
}

#[derive(Template)]
#[template(path = "messages/account_error.txt")]
struct AccountErrorText<'a> {
    field: &'a str,
    error: FormError,
}

pub fn account_error(field: &str, error: FormError) -> String {
    render(AccountErrorText { field, error })
}

#[derive(Template)]
#[template(path = "messages/api_error.txt")]
struct ApiErrorText {
    error: ApiErrorCode,
}

pub fn api_error(error: ApiErrorCode) -> String {
    render(ApiErrorText { error })
}
