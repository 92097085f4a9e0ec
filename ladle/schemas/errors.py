"""The Databricks error model: `{"error_code", "message", "details"}` with standard codes."""

from __future__ import annotations

import uuid

STATUS_FOR_CODE = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "MALFORMED_REQUEST": 400,
    "INVALID_STATE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_ALREADY_EXISTS": 409,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "BAD_GATEWAY": 502,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class ApiError(Exception):
    """An error a client sees. Raised anywhere in services; rendered by the API layer."""

    def __init__(
        self,
        error_code: str,
        message: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status or STATUS_FOR_CODE.get(error_code, 400)
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict:
        return {
            "error_code": self.error_code,
            "message": self.message,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.RequestInfo",
                    "request_id": request_id or str(uuid.uuid4()),
                    "serving_data": "",
                }
            ],
        }


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message)


NOT_FOUND_HINT = "Verify the name with `serving-endpoints list`."


def not_found(name: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist. {NOT_FOUND_HINT}")


def endpoint_denied(principal: str, kind: str, wanted: str, name: str, has: str | None = None) -> ApiError:
    """PERMISSION_DENIED on an endpoint, with what to do: who may grant it, and for an app's
    service principal the resource its app declares."""
    held = f" (has {has})" if has else ""
    message = (f"Principal '{principal}' does not have {wanted} permission on endpoint '{name}'{held}. "
               f"A user with CAN_MANAGE on it can grant {wanted} (`serving-endpoints update-permissions "
               "<ENDPOINT_ID>`).")
    if kind == "service_principal" and wanted == "CAN_QUERY":
        message += (" For an app, declare the endpoint as a `serving_endpoint` resource of the app with "
                    "permission CAN_QUERY.")
    return ApiError("PERMISSION_DENIED", message)


def conflict(message: str) -> ApiError:
    return ApiError("RESOURCE_CONFLICT", message)


def denied(message: str) -> ApiError:
    return ApiError("PERMISSION_DENIED", message)
