"""Generated test data with ground truth: e-invoice XML, invoices and receipts as PDFs and scans."""
