"""Loaded by every Python process that has this folder on PYTHONPATH (scripts/deploy-rehearsal puts it there for
scripts/deploy and the SAM CLI it runs): with METERS_RECORD_CALLS set, each AWS API call any botocore client makes
is appended to that file as one JSON line (service, operation, the parameters that name what it acts on), so that
scripts/check_deploy_rehearsal.py can check every call against the pipeline role that makes it."""
import json
import os

if os.environ.get("METERS_RECORD_CALLS"):
    try:
        import botocore.client
    except ImportError:  # a Python without botocore makes no AWS call
        pass
    else:
        _make_api_call = botocore.client.BaseClient._make_api_call
        NAMING = ("Bucket", "Key", "StackName", "ChangeSetName", "RoleARN", "UsePreviousTemplate")

        def _recorded(self, operation_name, api_params):
            with open(os.environ["METERS_RECORD_CALLS"], "a") as file:
                file.write(json.dumps({"service": self.meta.service_model.service_name, "operation": operation_name,
                                       "params": {k: api_params[k] for k in NAMING if k in api_params}}) + "\n")
            return _make_api_call(self, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = _recorded
