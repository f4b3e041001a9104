use serde_json::Value;

/// A GraphQL response with helpers to assert on it.
#[derive(Debug, Clone)]
pub struct GqlResponse {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl GqlResponse {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// `extensions.code` of each error.
    pub fn codes(&self) -> Vec<String> {
        self.errors().iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").to_owned()).collect()
    }

    pub fn first_code(&self) -> String {
        self.codes().into_iter().next().unwrap_or_else(|| "<no error>".into())
    }

    pub fn first_message(&self) -> String {
        self.errors().first().and_then(|e| e["message"].as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Panics with the whole body unless the response has no errors.
    pub fn ok(self) -> Self {
        assert!(self.errors().is_empty() && self.status == 200, "expected success, got {}: {:#}", self.status, self.body);
        self
    }

    /// Panics unless the first error has `code`.
    pub fn expect_code(self, code: &str) -> Self {
        assert_eq!(self.first_code(), code, "unexpected response: {:#}", self.body);
        self
    }

    pub fn at(&self, pointer: &str) -> &Value {
        self.data().pointer(pointer).unwrap_or(&Value::Null)
    }

    pub fn str_at(&self, pointer: &str) -> String {
        self.at(pointer).as_str().unwrap_or_else(|| panic!("no string at {pointer} in {:#}", self.body)).to_owned()
    }
}
