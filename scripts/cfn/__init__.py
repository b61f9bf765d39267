"""What the test command knows of CloudFormation and IAM: templates read and resolved as CloudFormation would
(template.py), IAM policies evaluated as AWS does (iam.py), the resource providers' handler permissions and the
IAM service reference (reference.py), and the model of one deploy of the stack (deployment.py)."""
