//! MSG91's flow API (India, DLT): the send request, its errors, and the delivery-report webhook.
