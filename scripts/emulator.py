#!/usr/bin/env python3
"""Prepares a running moto server for the tests, from the deployment's own definitions.

Creates every AWS::DynamoDB::Table of template.yaml (keys, indexes, billing, TTL) under a
run-unique name, a KMS key, and the SES sender identity, then prints the environment the
functions read (as `export NAME=value` lines).

    emulator.py ENDPOINT_URL TEMPLATE SUFFIX
"""
import sys

import boto3
import yaml

# The function environment variable that names each table, as template.yaml wires it.
TABLE_ENV = {
    "UsersTable": "USERS_TABLE",
    "ScopedKeysTable": "SCOPED_KEYS_TABLE",
    "ResetTokensTable": "RESET_TOKENS_TABLE",
    "ThrottleTable": "THROTTLE_TABLE",
    "ActivityTable": "ACTIVITY_TABLE",
}
EMAIL_FROM = "no-reply@foundry-auth.test"
RESET_URL = "https://relay.foundry-auth.test/reset"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref, !If, ...) as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _tag)


def create_table(ddb, name, props):
    args = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    ddb.create_table(**args)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )


def main(endpoint, template_path, suffix):
    with open(template_path) as f:
        template = yaml.load(f, Loader=CfnLoader)
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    exports = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        if logical not in TABLE_ENV:
            sys.exit(f"template.yaml declares table {logical}, which no environment variable names")
        name = f"{logical}-{suffix}"
        create_table(ddb, name, resource["Properties"])
        exports[TABLE_ENV[logical]] = name
    missing = set(TABLE_ENV.values()) - set(exports)
    if missing:
        sys.exit(f"template.yaml lacks the tables for {sorted(missing)}")

    kms = session.client("kms", endpoint_url=endpoint)
    exports["KMS_KEY_ID"] = kms.create_key(Description=f"foundry-auth tests {suffix}")["KeyMetadata"]["Arn"]
    session.client("sesv2", endpoint_url=endpoint).create_email_identity(EmailIdentity=EMAIL_FROM)
    exports["EMAIL_FROM"] = EMAIL_FROM
    exports["RESET_URL"] = RESET_URL
    for name, value in exports.items():
        print(f"export {name}={value}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
