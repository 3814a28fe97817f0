print("fedswift")
