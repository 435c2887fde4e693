"""Writing rejected rows to a file for the office: an Excel workbook or a CSV that Excel opens as UTF-8."""
