"""What people take away from a read document: hOCR, ALTO and a searchable PDF, built from the
stored words and boxes of whichever engine read each page."""
