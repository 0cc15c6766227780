import CMariaDB
import Foundation

/// A server-side prepared statement: binds values, executes, reads every row.
///
/// Integer columns are read into 8-byte buffers; every other column is fetched at its exact
/// length with `mysql_stmt_fetch_column`, so values of any size come back whole.
final class MySQLPreparedStatement {
    private let statement: UnsafeMutablePointer<MYSQL_STMT>
    private let parameterCount: Int

    init(connection: UnsafeMutablePointer<MYSQL>, sql: String) throws {
        guard let statement = mysql_stmt_init(connection) else {
            throw MySQLSession.error(of: connection, operation: "prepare")
        }
        let failed = sql.withCString { mysql_stmt_prepare(statement, $0, UInt(strlen($0))) } != 0
        if failed {
            let error = Self.error(of: statement, operation: "prepare")
            mysql_stmt_close(statement)
            throw error
        }
        self.statement = statement
        parameterCount = Int(mysql_stmt_param_count(statement))
    }

    func close() {
        mysql_stmt_close(statement)
    }

    func execute(_ values: [MySQLValue]) throws -> MySQLResult {
        guard values.count == parameterCount else {
            throw MySQLError.usage("The statement has \(parameterCount) placeholders but \(values.count) values were given.", operation: "execute")
        }
        try bindAndExecute(values)
        let affected = mysql_stmt_affected_rows(statement)
        let insertID = mysql_stmt_insert_id(statement)
        var columns: [String] = []
        var rows: [MySQLRow] = []
        if mysql_stmt_field_count(statement) > 0 {
            defer { mysql_stmt_free_result(statement) }
            (columns, rows) = try fetchRows()
        }
        try discardFurtherResults()
        return MySQLResult(
            columns: columns, rows: rows,
            affectedRows: affected == UInt64.max ? 0 : Int(affected),
            lastInsertID: Int64(truncatingIfNeeded: insertID))
    }

    // MARK: - Parameters

    private func bindAndExecute(_ values: [MySQLValue]) throws {
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: max(1, values.count))
        binds.initialize(repeating: MYSQL_BIND(), count: max(1, values.count))
        var buffers: [UnsafeMutableRawPointer] = []
        defer {
            for buffer in buffers { buffer.deallocate() }
            binds.deallocate()
        }
        // One copy into C memory per value (payloads can be megabytes: no intermediate arrays).
        func copy(_ bytes: UnsafeRawBufferPointer) -> (UnsafeMutableRawPointer, Int) {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
            if let source = bytes.baseAddress { buffer.copyMemory(from: source, byteCount: bytes.count) }
            buffers.append(buffer)
            return (buffer, bytes.count)
        }
        for (index, value) in values.enumerated() {
            switch value {
            case .null:
                binds[index].buffer_type = MYSQL_TYPE_NULL
            case .integer(let integer):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffer.storeBytes(of: integer, as: Int64.self)
                buffers.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = buffer
                binds[index].buffer_length = 8
            case .text(var text):
                let (buffer, count) = text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
                binds[index].buffer_type = MYSQL_TYPE_STRING
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(count)
            case .bytes(let bytes):
                let (buffer, count) = bytes.withUnsafeBytes { copy($0) }
                binds[index].buffer_type = MYSQL_TYPE_BLOB
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(count)
            }
        }
        if parameterCount > 0 && mysql_stmt_bind_param(statement, binds) != 0 {
            throw Self.error(of: statement, operation: "bind")
        }
        if mysql_stmt_execute(statement) != 0 {
            throw Self.error(of: statement, operation: "execute")
        }
    }

    // MARK: - Results

    /// A `CALL` answers with its procedure's result sets and then a status of its own; the
    /// connection is usable again only once all of them are read. The caller gets the first
    /// result set; an error raised after it (a failed `COMMIT` inside the procedure) still throws.
    private func discardFurtherResults() throws {
        while mysql_stmt_more_results(statement) != 0 {
            let status = mysql_stmt_next_result(statement)
            if status > 0 { throw Self.error(of: statement, operation: "execute") }
            if status < 0 { return }
            if mysql_stmt_field_count(statement) > 0 {
                defer { mysql_stmt_free_result(statement) }
                _ = try fetchRows()
            }
        }
    }

    private func fetchRows() throws -> ([String], [MySQLRow]) {
        guard let metadata = mysql_stmt_result_metadata(statement) else {
            throw Self.error(of: statement, operation: "fetch")
        }
        defer { mysql_free_result(metadata) }
        let count = Int(mysql_num_fields(metadata))
        let fields = mysql_fetch_fields(metadata)!
        var names: [String] = []
        var isInteger: [Bool] = []
        var isBinary: [Bool] = []
        for index in 0..<count {
            let field = fields[index]
            names.append(String(cString: field.name))
            isInteger.append([MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_INT24, MYSQL_TYPE_YEAR]
                .contains(field.type))
            // Character set 63 is `binary`: BLOB and VARBINARY columns.
            isBinary.append(field.charsetnr == 63)
        }
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: count)
        binds.initialize(repeating: MYSQL_BIND(), count: count)
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
        let nulls = UnsafeMutablePointer<my_bool>.allocate(capacity: count)
        nulls.initialize(repeating: 0, count: count)
        let integers = UnsafeMutablePointer<Int64>.allocate(capacity: count)
        integers.initialize(repeating: 0, count: count)
        // Other columns are read with fetch_column once their length is known; the fetch itself
        // gets an empty buffer (and reports truncation, which is expected).
        let empty = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer {
            binds.deallocate(); lengths.deallocate(); nulls.deallocate(); integers.deallocate(); empty.deallocate()
        }
        for index in 0..<count {
            binds[index].length = lengths + index
            binds[index].is_null = nulls + index
            if isInteger[index] {
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = UnsafeMutableRawPointer(integers + index)
                binds[index].buffer_length = 8
            } else {
                binds[index].buffer_type = MYSQL_TYPE_STRING
                binds[index].buffer = empty
                binds[index].buffer_length = 0
            }
        }
        if mysql_stmt_bind_result(statement, binds) != 0 {
            throw Self.error(of: statement, operation: "fetch")
        }
        var rows: [MySQLRow] = []
        while true {
            let status = mysql_stmt_fetch(statement)
            if status == MYSQL_NO_DATA { break }
            if status == 1 { throw Self.error(of: statement, operation: "fetch") }
            var values: [MySQLValue] = []
            values.reserveCapacity(count)
            for index in 0..<count {
                if nulls[index] != 0 {
                    values.append(.null)
                } else if isInteger[index] {
                    values.append(.integer(integers[index]))
                } else {
                    let bytes = try column(index, length: Int(lengths[index]))
                    values.append(isBinary[index] ? .bytes(bytes) : .text(String(decoding: bytes, as: UTF8.self)))
                }
            }
            rows.append(MySQLRow(values: values))
        }
        return (names, rows)
    }

    private func column(_ index: Int, length: Int) throws -> [UInt8] {
        guard length > 0 else { return [] }
        return try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            var bind = MYSQL_BIND()
            var columnLength: UInt = 0
            var isNull: my_bool = 0
            try withUnsafeMutablePointer(to: &columnLength) { lengthPointer in
                try withUnsafeMutablePointer(to: &isNull) { nullPointer in
                    bind.buffer_type = MYSQL_TYPE_STRING
                    bind.buffer = UnsafeMutableRawPointer(buffer.baseAddress!)
                    bind.buffer_length = UInt(length)
                    bind.length = lengthPointer
                    bind.is_null = nullPointer
                    if mysql_stmt_fetch_column(statement, &bind, UInt32(index), 0) != 0 {
                        throw Self.error(of: statement, operation: "fetch")
                    }
                }
            }
            initialized = min(length, Int(columnLength))
        }
    }

    static func error(of statement: UnsafeMutablePointer<MYSQL_STMT>, operation: String) -> MySQLError {
        MySQLError(code: Int(mysql_stmt_errno(statement)), sqlState: String(cString: mysql_stmt_sqlstate(statement)),
                   message: String(cString: mysql_stmt_error(statement)), operation: operation)
    }
}
