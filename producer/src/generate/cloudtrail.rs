//! CloudTrail records (one element of a log file's `Records`), as AWS documents them
//! ("CloudTrail record contents"): `eventVersion`, `userIdentity`, `eventTime`,
//! `eventSource`, `eventName`, `awsRegion`, `sourceIPAddress`, `userAgent`, `errorCode` and
//! `errorMessage` on failures, `requestParameters`, `responseElements`, `requestID`,
//! `eventID`, `eventType`, `recipientAccountId`. Normal traffic is read-only calls by roles in
//! the expected regions (`us-east-1`, `eu-west-1`); the anomalies are the CIS AWS Foundations
//! monitoring list's events.

use serde_json::{Value, json};

use super::sources::{Common, SourceRecord, rfc3339_s};

const ACCOUNT: &str = "123456789012";
/// The regions normal traffic uses: the preset's expected regions.
pub const EXPECTED_REGIONS: &[&str] = &["us-east-1", "eu-west-1"];
const UNEXPECTED_REGIONS: &[&str] = &["ap-east-1", "me-south-1", "sa-east-1", "af-south-1"];
/// Read-only calls of normal traffic: (event source, event name).
const READS: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("iam.amazonaws.com", "GetRole"),
    ("lambda.amazonaws.com", "ListFunctions20150331"),
    ("monitoring.amazonaws.com", "GetMetricData"),
    ("kms.amazonaws.com", "Decrypt"),
    ("ssm.amazonaws.com", "GetParameter"),
];
const ROLES: &[&str] = &[
    "ci-deploy",
    "app-runtime",
    "observability-reader",
    "ops-admin",
];
const AGENTS: &[&str] = &[
    "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.6",
    "aws-sdk-go-v2/1.32.5 os/linux lang/go#1.23.3 md/GOOS#linux md/GOARCH#amd64",
    "Boto3/1.35.68 md/Botocore#1.35.68 ua/2.0 os/linux#6.1.0 lang/python#3.12.6",
    "terraform-provider-aws/5.80.0",
];
/// Changes from the CIS monitoring list: (indicator, event source, event names).
const CHANGES: &[(&str, &str, &[&str])] = &[
    (
        "ct_iam_policy_change",
        "iam.amazonaws.com",
        &[
            "PutRolePolicy",
            "AttachRolePolicy",
            "CreatePolicyVersion",
            "DeleteUserPolicy",
        ],
    ),
    (
        "ct_cloudtrail_change",
        "cloudtrail.amazonaws.com",
        &["StopLogging", "UpdateTrail", "DeleteTrail"],
    ),
    (
        "ct_kms_key_change",
        "kms.amazonaws.com",
        &["DisableKey", "ScheduleKeyDeletion"],
    ),
    (
        "ct_security_group_change",
        "ec2.amazonaws.com",
        &[
            "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupEgress",
            "CreateSecurityGroup",
        ],
    ),
    (
        "ct_nacl_change",
        "ec2.amazonaws.com",
        &[
            "CreateNetworkAclEntry",
            "ReplaceNetworkAclEntry",
            "DeleteNetworkAcl",
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    AccessDenied,
    Root,
    LoginFailed,
    LoginNoMfa,
    LoginMfa,
    Change(usize),
    UnexpectedRegion,
}

const NORMAL: &[(Kind, u32)] = &[
    (Kind::Read, 950),
    (Kind::AccessDenied, 10),
    (Kind::LoginMfa, 10),
    (Kind::LoginFailed, 3),
    (Kind::LoginNoMfa, 2),
    (Kind::Root, 2),
    (Kind::Change(0), 3),
    (Kind::Change(1), 1),
    (Kind::Change(2), 1),
    (Kind::Change(3), 3),
    (Kind::Change(4), 1),
    (Kind::UnexpectedRegion, 3),
];

fn injected(indicator: &str) -> Kind {
    if let Some(i) = CHANGES.iter().position(|(name, _, _)| *name == indicator) {
        return Kind::Change(i);
    }
    match indicator {
        "ct_access_denied" => Kind::AccessDenied,
        "ct_root_activity" => Kind::Root,
        "ct_console_login_failed" => Kind::LoginFailed,
        "ct_console_login_no_mfa" => Kind::LoginNoMfa,
        "ct_unexpected_region" => Kind::UnexpectedRegion,
        _ => Kind::Read,
    }
}

/// The CloudTrail generator.
#[derive(Debug, Clone)]
pub struct CloudTrail {
    pub(crate) common: Common,
}

impl CloudTrail {
    pub(crate) fn new(common: Common) -> Self {
        Self { common }
    }

    pub(crate) fn next(&mut self, timestamp_ms: i64, inject: Option<&str>) -> SourceRecord {
        let c = &mut self.common;
        let injects = c.injects(inject).map(injected);
        let kind = injects.unwrap_or(*c.pick(NORMAL));
        // The key is the eventID, a UUID as AWS's are.
        let event_id = c.uuid();
        let request_id = c.uuid();
        let (source, name) = *c.one(READS);
        let role = *c.one(ROLES);
        let region = *c.one(EXPECTED_REGIONS);
        let agent = *c.one(AGENTS);
        let ip = c.public_ip();
        let session = format!("{role}-{}", c.int(1_000..9_999));
        let assumed = json!({
            "type": "AssumedRole",
            "principalId": format!("AROA5EXAMPLE{}:{session}", role.len()),
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
            "accountId": ACCOUNT,
            "accessKeyId": "ASIA5EXAMPLEKEY12345",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role", "principalId": "AROA5EXAMPLE",
                    "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                    "accountId": ACCOUNT, "userName": role
                },
                "attributes": {"creationDate": rfc3339_s(timestamp_ms - 600_000), "mfaAuthenticated": "false"}
            }
        });
        let mut record = json!({
            "eventVersion": "1.10",
            "userIdentity": assumed,
            "eventTime": rfc3339_s(timestamp_ms),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": agent,
            "requestParameters": null,
            "responseElements": null,
            "requestID": request_id,
            "eventID": event_id,
            "readOnly": true,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": format!("{}.{region}.amazonaws.com", source.trim_end_matches(".amazonaws.com"))},
        });
        match kind {
            Kind::Read => {}
            Kind::AccessDenied => {
                let (source, name, code) = *c.one(&[
                    ("s3.amazonaws.com", "ListBuckets", "AccessDenied"),
                    ("iam.amazonaws.com", "ListUsers", "AccessDenied"),
                    (
                        "secretsmanager.amazonaws.com",
                        "GetSecretValue",
                        "AccessDenied",
                    ),
                    (
                        "ec2.amazonaws.com",
                        "DescribeInstances",
                        "Client.UnauthorizedOperation",
                    ),
                ]);
                record["eventSource"] = source.into();
                record["eventName"] = name.into();
                record["errorCode"] = code.into();
                record["errorMessage"] = format!(
                    "User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session} is not authorized to perform: {}:{name} because no identity-based policy allows the {}:{name} action",
                    source.trim_end_matches(".amazonaws.com"),
                    source.trim_end_matches(".amazonaws.com"),
                )
                .into();
            }
            Kind::Root => {
                record["userIdentity"] = json!({
                    "type": "Root", "principalId": ACCOUNT,
                    "arn": format!("arn:aws:iam::{ACCOUNT}:root"),
                    "accountId": ACCOUNT, "accessKeyId": "ASIA5ROOTEXAMPLE1234"
                });
            }
            Kind::LoginFailed | Kind::LoginNoMfa | Kind::LoginMfa => {
                let user = *c.one(&["alice", "bob", "carol", "deploy-admin"]);
                let success = kind != Kind::LoginFailed;
                let mfa = if kind == Kind::LoginMfa { "Yes" } else { "No" };
                record["userIdentity"] = json!({
                    "type": "IAMUser", "principalId": "AIDA5EXAMPLEUSER",
                    "arn": format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
                    "accountId": ACCOUNT, "userName": user
                });
                record["eventSource"] = "signin.amazonaws.com".into();
                record["eventName"] = "ConsoleLogin".into();
                record["eventType"] = "AwsConsoleSignIn".into();
                record["readOnly"] = false.into();
                record["userAgent"] =
                    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".into();
                record["responseElements"] =
                    json!({"ConsoleLogin": if success { "Success" } else { "Failure" }});
                record["additionalEventData"] = json!({
                    "LoginTo": "https://console.aws.amazon.com/console/home",
                    "MobileVersion": "No", "MFAUsed": mfa
                });
                if !success {
                    record["errorMessage"] = "Failed authentication".into();
                }
                record.as_object_mut().map(|o| o.remove("tlsDetails"));
            }
            Kind::Change(i) => {
                let (_, source, names) = CHANGES[i];
                record["eventSource"] = source.into();
                record["eventName"] = (*c.one(names)).into();
                record["readOnly"] = false.into();
                record["requestParameters"] = json!({"note": "generated"});
            }
            Kind::UnexpectedRegion => {
                record["awsRegion"] = (*c.one(UNEXPECTED_REGIONS)).into();
            }
        }
        let line = record.to_string();
        SourceRecord {
            key: event_id,
            raw: line.clone().into_bytes(),
            indicators: indicators(&record),
            line,
        }
    }
}

/// The preset's indicators of a CloudTrail record, read from its documented fields.
fn indicators(record: &Value) -> Vec<&'static str> {
    let name = record["eventName"].as_str().unwrap_or_default();
    let code = record["errorCode"].as_str().unwrap_or_default();
    let login = name == "ConsoleLogin";
    let outcome = record["responseElements"]["ConsoleLogin"].as_str();
    let region = record["awsRegion"].as_str().unwrap_or_default();
    let mut found: Vec<&'static str> = [
        (
            "ct_access_denied",
            code.starts_with("AccessDenied")
                || code.ends_with("UnauthorizedOperation")
                || code.contains("UnauthorizedAccess"),
        ),
        ("ct_root_activity", record["userIdentity"]["type"] == "Root"),
        (
            "ct_console_login_failed",
            login && outcome == Some("Failure"),
        ),
        (
            "ct_console_login_no_mfa",
            login && outcome == Some("Success") && record["additionalEventData"]["MFAUsed"] == "No",
        ),
        ("ct_unexpected_region", !EXPECTED_REGIONS.contains(&region)),
    ]
    .into_iter()
    .filter_map(|(indicator, on)| on.then_some(indicator))
    .collect();
    for (indicator, source, names) in CHANGES {
        if record["eventSource"] == *source && names.contains(&name) {
            found.push(indicator);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use pipeline::wire::Source;

    use super::super::sources::tests::records;

    #[test]
    fn records_are_cloudtrail_records() {
        for record in records(Source::Cloudtrail, 400, Some("ct_access_denied")) {
            let value: serde_json::Value = serde_json::from_str(&record.line).expect("JSON");
            assert_eq!(value["eventID"], record.key.as_str());
            assert_eq!(value["eventVersion"], "1.10");
            assert!(
                value["eventTime"]
                    .as_str()
                    .is_some_and(|t| t.ends_with('Z'))
            );
            if record.indicators.contains(&"ct_access_denied") {
                let code = value["errorCode"].as_str().expect("an error code");
                assert!(code == "AccessDenied" || code == "Client.UnauthorizedOperation");
            }
        }
    }
}
